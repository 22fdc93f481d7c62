// The keys of both workspaces (the annotator's and the gold one), and their control buttons:
// Space plays or pauses, R replays, the arrows step a frame, S slows down (1x, 0.5x, 0.25x),
// X skips, U undoes, ? or H opens the help, Escape closes it (or cancels a correction), and
// each class has its number. Each workspace passes what these mean for it.
import { ANSWERS } from "./api.js";

const SPEEDS = [1, 0.5, 0.25];

export function workspaceKeys({ video, speedEl, helpEl, fps, toggleHelp, skip, undo, answer, cancel }) {
  let speed = 0;

  function step(frames) {
    const rate = fps() || 25;
    video.pause();
    video.currentTime = Math.max(0, Math.min(video.duration || 0, video.currentTime + frames / rate));
  }

  const actions = {
    " ": () => (video.paused ? video.play().catch(() => {}) : video.pause()),
    r: () => {
      video.currentTime = 0;
      video.play().catch(() => {});
    },
    ArrowLeft: () => step(-1),
    ArrowRight: () => step(1),
    s: () => {
      speed = (speed + 1) % SPEEDS.length;
      video.playbackRate = SPEEDS[speed];
      speedEl.textContent = `${SPEEDS[speed]}×`;
    },
    x: skip,
    u: undo,
    "?": () => toggleHelp(),
    h: () => toggleHelp(),
    Escape: () => (helpEl.hidden ? cancel() : toggleHelp(false)),
  };
  for (const a of ANSWERS) actions[a.hotkey] = () => answer(a.key);

  function run(key) {
    if (!helpEl.hidden && key !== "Escape" && key !== "?" && key !== "h") return;
    actions[key]();
  }

  // Capture phase on window: the workspace sees every key first and keeps the ones it uses, so
  // Space never presses a focused button and arrows never scroll the page.
  window.addEventListener(
    "keydown",
    (event) => {
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
      if (!(key in actions)) return;
      event.preventDefault();
      event.stopPropagation();
      if (event.repeat && !key.startsWith("Arrow")) return;
      run(key);
    },
    { capture: true },
  );
  for (const b of document.querySelectorAll(".controls button")) {
    b.addEventListener("click", () => {
      b.blur();
      run(b.dataset.key);
    });
  }

  // The chosen speed holds for every clip shown after it.
  return { rate: () => SPEEDS[speed] };
}
