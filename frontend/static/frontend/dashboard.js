// The campaign dashboard for reviewers and admins, drawn from the progress, statistics,
// ingestion and export endpoints.
import { ANSWERS, api, el, explain, showMessage } from "./api.js";

const app = document.getElementById("app");
const CAMPAIGN = app.dataset.campaign;
const base = `campaigns/${CAMPAIGN}/`;

// FERV39k clips per class over the whole release (train + test), summed from
// /work/shared/data/ferv39k_scene_class_counts.csv (the release's scene x class x split counts,
// see FERV39K.md); 38,935 clips in all.
const FERV39K = { angry: 7393, disgust: 2300, fear: 2111, happy: 7327, neutral: 9748, sad: 6916, surprise: 3140 };
const CLASSES = ANSWERS.filter((a) => a.key !== "pass");
const STATUSES = [
  ["clips", "Clips"], ["collecting", "In progress (collecting votes)"], ["trusted", "Trusted"],
  ["disputed", "Disputed"], ["discarded", "Discarded"], ["adjudicated", "Adjudicated"],
  ["gold", "Gold"], ["failed", "Failed media (not counted above)"], ["votes", "Votes"],
  ["live_assignments", "Being looked at now"],
];

const pct = (x) => (x === null || x === undefined ? "—" : `${Math.round(x * 100)}%`);
const num = (x, d = 2) => (x === null || x === undefined ? "—" : Number(x).toFixed(d));

function bar(label, value, max, text, cls = "") {
  const width = max > 0 ? Math.max(0, Math.min(1, value / max)) * 100 : 0;
  return el("div", { class: "bar", role: "img", "aria-label": `${label}: ${text}` },
    el("span", { text: label }),
    el("span", { class: "track" }, el("span", { class: `fill ${cls}`, style: `width:${width}%;display:block` })),
    el("span", { text }));
}

function dl(rows) {
  return el("dl", { class: "keys" }, ...rows.flatMap(([key, label, value]) => [
    el("dt", { text: label }), el("dd", { "data-status": key }, el("span", { class: "n", text: String(value) })),
  ]));
}

async function loadProgress() {
  const box = document.getElementById("progress");
  try {
    const { data } = await api("GET", base + "progress/");
    box.replaceChildren(dl(STATUSES.map(([k, label]) => [k, label, data[k]])));
  } catch (err) {
    box.replaceChildren(el("p", { class: "error", text: explain(err) }));
  }
}

async function loadIngestion() {
  const box = document.getElementById("ingestion");
  try {
    const { data } = await api("GET", base + "ingestion/");
    const done = data.total ? (data.ready + data.failed) / data.total : 1;
    box.replaceChildren(
      el("progress", { max: "1", value: String(done), "aria-label": "Clips processed" }),
      dl([["total", "Clips", data.total], ["ready", "Ready", data.ready], ["pending", "Waiting", data.pending],
        ["processing", "Processing", data.processing], ["failed", "Failed", data.failed]]),
      ...(data.failures || []).slice(0, 5).map((f) => el("p", { class: "error", text: `${f.name || f.id}: ${f.error || ""}` })),
    );
  } catch (err) {
    box.replaceChildren(el("p", { class: "error", text: explain(err) }));
  }
}

function drawStats(stats) {
  const d = stats.data;
  document.getElementById("stats-meta").textContent = d
    ? `Overall alpha ${num(d.alpha)} · Fleiss' kappa ${num(d.fleiss_kappa)} · ${d.votes} votes on ${d.clips} clips · ` +
      `computed ${new Date(stats.computed_at).toLocaleString()}`
    : "Not computed yet: press Recompute statistics.";
  const alphaBars = (rows, key) => (rows || []).map((r) =>
    bar(r[key], r.alpha === null ? 0 : Math.abs(r.alpha), 1,
      r.alpha === null ? "n/a" : `${num(r.alpha)} (${r.clips})`, r.alpha < 0 ? "neg" : ""));
  document.getElementById("alpha-scenario").replaceChildren(...alphaBars(d && d.per_scenario, "scenario"));
  document.getElementById("alpha-scene").replaceChildren(...alphaBars(d && d.per_scene, "scene"));

  const ours = (d && d.per_class) || {};
  const oursTotal = Object.values(ours).reduce((a, b) => a + b, 0);
  const refTotal = Object.values(FERV39K).reduce((a, b) => a + b, 0);
  const balance = document.getElementById("balance");
  balance.replaceChildren(el("p", { class: "legend" }, el("span", { style: "background:var(--accent)" }),
    `Trusted labels here (${oursTotal})`, el("span", { style: "background:#9a6700" }), "FERV39k release"));
  for (const c of CLASSES) {
    const share = oursTotal ? (ours[c.key] || 0) / oursTotal : 0;
    const ref = FERV39K[c.key] / refTotal;
    balance.append(bar(`${c.name} (here)`, share, 0.4, pct(share)), bar(`${c.name} (FERV39k)`, ref, 0.4, pct(ref), "ref"));
  }

  const table = document.getElementById("annotators");
  const rows = (d && d.annotators) || [];
  table.replaceChildren(
    el("thead", {}, el("tr", {}, ...["Annotator", "Votes", "Agreement", "Gold accuracy", "PASS rate", "Median time",
      "Batches (accept / improper / unacceptable / rejected)"]
      .map((h) => el("th", { text: h })))),
    el("tbody", {}, ...rows.map((r) => el("tr", {},
      el("td", { text: r.annotator || r.username || `#${r.annotator_id}` }), el("td", { text: String(r.votes) }),
      el("td", { text: pct(r.agreement) }), el("td", { text: `${pct(r.gold_accuracy)} (${r.gold_answers})` }),
      el("td", { text: pct(r.pass_rate) }),
      el("td", { text: r.median_time_ms === null ? "—" : `${(r.median_time_ms / 1000).toFixed(1)} s` }),
      el("td", { text: r.batches ? ["accept", "improper", "unacceptable", "rejected"].map((k) => r.batches[k]).join(" / ") : "—" })))),
  );

  // Progress per scene: clips by consensus status.
  const statusKeys = ["collecting", "trusted", "disputed", "discarded", "adjudicated"];
  const sceneTable = document.getElementById("scene-progress");
  if (sceneTable) {
    sceneTable.replaceChildren(
      el("thead", {}, el("tr", {}, ...["Scene", ...statusKeys].map((h) => el("th", { text: h })))),
      el("tbody", {}, ...((d && d.per_scene) || []).map((r) => el("tr", {},
        el("td", { text: r.scene }), ...statusKeys.map((k) => el("td", { text: String((r.status || {})[k] ?? 0) }))))),
    );
  }
}

// Collusion and fatigue signals (issue 14), stored with the statistics: flagged rows first.
function drawSignals(signals) {
  const box = document.getElementById("signals");
  if (!box) return;
  if (!signals) {
    box.textContent = "Computed with the statistics.";
    return;
  }
  const pairs = (signals.collusion || []).filter((p) => p.flagged);
  const tired = (signals.fatigue || []).filter((r) => r.flagged);
  box.replaceChildren(
    el("h3", { text: `Pairs agreeing more than their accuracy explains: ${pairs.length}` }),
    el("table", { class: "table", id: "signals-collusion" },
      el("thead", {}, el("tr", {}, ...["Annotators", "Shared clips", "Same answer", "Expected", "z"].map((h) => el("th", { text: h })))),
      el("tbody", {}, ...pairs.map((p) => el("tr", {},
        el("td", { text: p.annotators.join(" + ") }), el("td", { text: String(p.shared_clips) }),
        el("td", { text: String(p.agreed) }), el("td", { text: num(p.expected, 1) }), el("td", { text: num(p.z, 1) }))))),
    el("h3", { text: `Accuracy falling over their work: ${tired.length}` }),
    el("table", { class: "table", id: "signals-fatigue" },
      el("thead", {}, el("tr", {}, ...["Annotator", "Checked votes", "First half", "Second half", "By quarter", "z"].map((h) => el("th", { text: h })))),
      el("tbody", {}, ...tired.map((r) => el("tr", {},
        el("td", { text: r.annotator || `#${r.annotator_id}` }), el("td", { text: String(r.checked_votes) }),
        el("td", { text: pct(r.accuracy_first_half) }), el("td", { text: pct(r.accuracy_second_half) }),
        el("td", { text: r.accuracy_by_quarter.map(pct).join(" → ") }), el("td", { text: num(r.z, 1) }))))),
  );
}

// The blind audit (issue 14): reviewers' answers on sampled trusted clips, with Wilson intervals.
function drawAudit(audit) {
  const box = document.getElementById("audit");
  if (!box || !audit) return;
  const interval = (r) => (r.interval_95 ? `${pct(r.interval_95[0])}–${pct(r.interval_95[1])}` : "—");
  const rows = [{ name: "All trusted clips", ...audit }, ...(audit.per_scenario || []), ...(audit.per_scene || [])];
  box.replaceChildren(
    el("p", { text: `${audit.audited} of ${audit.sampled} sampled clips audited (${pct(audit.share)} of trusted clips).` }),
    el("table", { class: "table", id: "audit-precision" },
      el("thead", {}, el("tr", {}, ...["Group", "Audited", "Right", "Precision", "95% interval"].map((h) => el("th", { text: h })))),
      el("tbody", {}, ...rows.filter((r) => r.audited).map((r) => el("tr", {},
        el("td", { text: r.name }), el("td", { text: String(r.audited) }), el("td", { text: String(r.right) }),
        el("td", { text: pct(r.precision) }), el("td", { text: interval(r) }))))),
  );
}

async function loadStats() {
  try {
    const { data } = await api("GET", base + "statistics/");
    drawStats(data);
    drawSignals(data && data.data ? data.data.signals : null);
    drawAudit(data && data.data ? data.data.audit : null);
    return data;
  } catch (err) {
    showMessage(explain(err));
    drawStats({ data: null });
    return null;
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

document.getElementById("refresh").addEventListener("click", async (e) => {
  const button = e.currentTarget;
  const before = (await loadStats() || {}).computed_at;
  button.disabled = true;
  const meta = document.getElementById("stats-meta");
  try {
    await api("POST", base + "statistics/refresh/");
    for (let i = 0; i < 60; i++) {
      meta.textContent = `Recomputing… (${i} s)`;
      await sleep(1000);
      const stats = await loadStats();
      if (stats && stats.computed_at && stats.computed_at !== before) break;
    }
    await loadProgress();
  } catch (err) {
    showMessage(explain(err));
  } finally {
    button.disabled = false;
  }
});

function exportRow(job) {
  const done = job.status === "done";
  return el("tr", { "data-job": String(job.id) },
    el("td", { text: `${job.kind} #${job.id}` }), el("td", { text: job.status }),
    el("td", {}, el("progress", { max: "1", value: String(job.progress ?? 0), "aria-label": `Export ${job.id} progress` }),
      ` ${job.rows_done}${job.rows_total ? " / " + job.rows_total : ""} rows`),
    el("td", {}, done && job.download_url ? el("a", { href: job.download_url, text: "Download" }) : (job.error || "")));
}

async function loadExports() {
  const table = document.getElementById("exports");
  try {
    const { data } = await api("GET", base + "exports/");
    table.replaceChildren(el("tbody", {}, ...data.map(exportRow)));
    if (data.some((j) => j.status === "pending" || j.status === "running")) setTimeout(loadExports, 1000);
  } catch (err) {
    table.replaceChildren(el("tbody", {}, el("tr", {}, el("td", { class: "error", text: explain(err) }))));
  }
}

for (const b of document.querySelectorAll(".export-buttons button")) {
  b.addEventListener("click", async () => {
    showMessage(null);
    try {
      await api("POST", base + "exports/", { kind: b.dataset.kind, params: {} });
      await loadExports();
    } catch (err) {
      showMessage(explain(err));
    }
  });
}

// ---- progress over time: inline SVG charts -------------------------------------------------

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  for (const c of children) node.append(c);
  return node;
}

// The drawing is as wide as its box in CSS pixels, so its labels stay readable on a phone.
let W = 720;
const H = 180, PAD = { l: 40, r: 10, t: 10, b: 22 };
const dayLabel = (d) => d.toLocaleDateString(undefined, { weekday: "short", day: "numeric" });

// A chart frame: y grid lines with labels up to ``max``, x labels at ``ticks`` ([x, text]).
function frame(label, max, ticks) {
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label });
  const y = (v) => H - PAD.b - (v / (max || 1)) * (H - PAD.t - PAD.b);
  for (const v of [0, max / 2, max]) {
    chart.append(svg("line", { class: v ? "grid-line" : "axis", x1: PAD.l, x2: W - PAD.r, y1: y(v), y2: y(v) }));
    chart.append(svg("text", { x: PAD.l - 4, y: y(v) + 4, "text-anchor": "end" }, document.createTextNode(String(Math.round(v)))));
  }
  ticks.forEach(([x, text], i) => {
    // The outer labels stay inside the chart.
    const anchor = ticks.length > 2 ? "middle" : i === 0 ? "start" : "end";
    chart.append(svg("text", { x, y: H - 6, "text-anchor": anchor }, document.createTextNode(text)));
  });
  return { chart, y };
}

function fitWidth(id) {
  W = Math.max(280, Math.round(document.getElementById(id).clientWidth || 720));
}

function drawAnswers(data) {
  fitWidth("chart-answers");
  const since = new Date(data.since).getTime();
  const hours = 7 * 24 + 1;
  const counts = new Array(hours).fill(0);
  for (const h of data.hours) {
    const i = Math.round((new Date(h.hour).getTime() - since) / 3600000);
    if (i >= 0 && i < hours) counts[i] += h.answers;
  }
  const max = 2 * Math.ceil(Math.max(1, ...counts) / 2); // even: whole numbers on the grid
  const step = (W - PAD.l - PAD.r) / hours;
  const ticks = [];
  const every = W < 500 ? 48 : 24; // a label every other day on a phone
  for (let i = 0; i < hours; i += every) ticks.push([PAD.l + (i + 12) * step, dayLabel(new Date(since + i * 3600000))]);
  const { chart, y } = frame(`Answers per hour over the last 7 days, at most ${max} in an hour`, max, ticks);
  counts.forEach((n, i) => {
    if (!n) return;
    const when = new Date(since + i * 3600000);
    chart.append(svg("rect", {
      class: "col", x: PAD.l + i * step, y: y(n), width: Math.max(1, step - 0.5), height: H - PAD.b - y(n),
    }, svg("title", {}, document.createTextNode(`${when.toLocaleString()}: ${n} answers`))));
  });
  document.getElementById("chart-answers").replaceChildren(chart);
}

function drawTrusted(data) {
  const points = data.trusted.map((p) => [new Date(p.day).getTime(), p.trusted]);
  const box = document.getElementById("chart-trusted");
  fitWidth("chart-trusted");
  if (!points.length) {
    box.replaceChildren(el("p", { class: "muted", text: "No trusted clip yet." }));
    return;
  }
  const first = points[0][0], last = Math.max(points[points.length - 1][0], first + 86400000);
  const x = (t) => PAD.l + ((t - first) / (last - first)) * (W - PAD.l - PAD.r);
  const max = 2 * Math.ceil(Math.max(1, points[points.length - 1][1]) / 2);
  const ticks = [[x(first), dayLabel(new Date(first))], [x(last), dayLabel(new Date(last))]];
  const { chart, y } = frame(`Trusted clips over time, ${max} now`, max, ticks);
  chart.append(svg("polyline", { class: "line", points: points.map(([t, v]) => `${x(t)},${y(v)}`).join(" ") }));
  for (const [t, v] of points) {
    chart.append(svg("circle", { class: "dot", cx: x(t), cy: y(v), r: 3 },
      svg("title", {}, document.createTextNode(`${new Date(t).toLocaleDateString()}: ${v} trusted`))));
  }
  box.replaceChildren(chart);
}

async function loadHistory() {
  const summary = document.getElementById("history-summary");
  try {
    const { data } = await api("GET", base + "progress/history/");
    const finish = data.votes_left === 0
      ? "Every clip has its votes."
      : data.finish_at
        ? `Estimated finish: ${new Date(data.finish_at).toLocaleDateString(undefined, { dateStyle: "medium" })}`
        : "No estimate yet (no answers in the last 24 hours).";
    summary.textContent = `${data.trusted_total} trusted · ${data.votes_left} votes still needed · ` +
      `${num(data.rate_per_hour, 1)} answers/hour over the last 24 hours · ${finish}`;
    drawAnswers(data);
    drawTrusted(data);
    const hms = (s) => `${Math.floor(s / 3600)} h ${String(Math.round((s % 3600) / 60)).padStart(2, "0")} min`;
    document.getElementById("throughput").replaceChildren(
      el("thead", {}, el("tr", {}, ...["Annotator", "Answers", "Active time", "Answers / active hour"].map((h) => el("th", { text: h })))),
      el("tbody", {}, ...data.annotators.map((r) => el("tr", {},
        el("td", { text: r.username }), el("td", { text: String(r.answers) }), el("td", { text: hms(r.active_s) }),
        el("td", { text: r.per_hour === null ? "—" : num(r.per_hour, 0) })))),
    );
  } catch (err) {
    summary.textContent = explain(err);
  }
}

loadHistory();
loadProgress();
loadIngestion();
loadStats();
loadExports();
