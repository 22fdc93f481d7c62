"""The login form, with the same limit on failed logins as the API (see throttle.py)."""

from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse

from labelstudio_ferv import throttle


class LoginView(auth_views.LoginView):
    """Django's login view; too many failures answer 429 with Retry-After and a plain message."""

    template_name = "frontend/login.html"

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        username = request.POST.get("username", "")
        wait = throttle.login_retry_after(request=request, username=username)
        if wait is None:
            return super().post(request, *args, **kwargs)
        # An unbound form: validating it would try the password.
        form = self.get_form_class()(request=request, initial={"username": username})
        context = self.get_context_data(form=form, throttled_seconds=wait)
        response = self.render_to_response(context, status=429)
        response["Retry-After"] = str(wait)
        return response

    def form_invalid(self, form) -> HttpResponse:
        if form.data.get("username") and form.data.get("password"):
            throttle.login_failed(request=self.request, username=form.data["username"])
        return super().form_invalid(form)
