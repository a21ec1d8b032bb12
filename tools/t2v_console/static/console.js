// t2v console: live updates without reloading, in plain JavaScript (no build step, no libraries).
// Sections marked data-live="URL" are refreshed from server-rendered HTML fragments every
// data-every milliseconds; a section marked data-stop-when-terminal stops once its job has ended.
"use strict";

function fragment(html) {
  const template = document.createElement("template");
  template.innerHTML = html;
  return template.content;
}

// Replace children that changed, keep the others (a playing video in the gallery keeps playing).
function merge(target, html) {
  const incoming = fragment(html);
  const keep = new Map();
  for (const node of target.querySelectorAll(":scope > [data-key]")) keep.set(node.dataset.key, node);
  const next = [];
  for (const node of Array.from(incoming.childNodes)) {
    if (node.nodeType !== Node.ELEMENT_NODE) continue;
    const old = node.dataset && node.dataset.key ? keep.get(node.dataset.key) : undefined;
    next.push(old || node);
  }
  target.replaceChildren(...next);
  applySearch();
}

async function refresh(section) {
  const response = await fetch(section.dataset.live, { headers: { Accept: "text/html" } });
  if (!response.ok) return true;
  const html = await response.text();
  if (section.id === "gallery") {
    merge(section, html);
    return true;
  }
  const before = section.querySelector("progress[value]");
  section.innerHTML = html;
  // A revised estimate may lower the API's fraction; the bar on screen never moves backwards.
  const after = section.querySelector("progress[value]");
  if (before && after && after.value < before.value) {
    after.value = before.value;
    const percent = section.querySelector("#percent");
    if (percent) percent.textContent = `${Math.round(after.value * 100)} %`;
  }
  const live = section.querySelector("[data-terminal]");
  if (live && live.dataset.terminal === "1") {
    await loadPlayer();
    return !section.hasAttribute("data-stop-when-terminal");
  }
  return true;
}

async function loadPlayer() {
  const player = document.getElementById("player");
  if (!player || player.querySelector("video")) return;
  const response = await fetch(player.dataset.src, { headers: { Accept: "text/html" } });
  if (response.ok) player.innerHTML = await response.text();
}

function follow(section) {
  const every = Number(section.dataset.every || 2000);
  const tick = async () => {
    let again = true;
    try {
      again = await refresh(section);
    } catch (error) {
      again = true; // the console restarting or a dropped connection: try again next tick
    }
    if (again) setTimeout(tick, every);
  };
  const live = section.querySelector("[data-terminal]");
  if (live && live.dataset.terminal === "1" && section.hasAttribute("data-stop-when-terminal")) return;
  setTimeout(tick, every);
}

function applySearch() {
  const box = document.getElementById("filter-text");
  if (!box) return;
  const words = box.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
  for (const card of document.querySelectorAll("#gallery > [data-text]")) {
    card.hidden = !words.every((w) => card.dataset.text.includes(w));
  }
}

// The duration rule, as the form's choices: 1080P sizes offer 5 and 8 s only.
function durationRule() {
  const size = document.getElementById("size");
  const duration = document.getElementById("duration");
  if (!size || !duration) return;
  const apply = () => {
    const allowed = (size.selectedOptions[0].dataset.durations || "").split(",");
    for (const option of duration.options) option.disabled = !allowed.includes(option.value);
    if (duration.selectedOptions[0].disabled) duration.value = allowed[0];
  };
  size.addEventListener("change", apply);
  apply();
}

document.addEventListener("DOMContentLoaded", () => {
  for (const section of document.querySelectorAll("[data-live]")) follow(section);
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.submit());
  }
  const box = document.getElementById("filter-text");
  if (box) box.addEventListener("input", applySearch);
  document.addEventListener("mouseover", (event) => {
    const video = event.target.closest && event.target.closest("video[data-hoverplay]");
    if (video) video.play().catch(() => {});
  });
  document.addEventListener("mouseout", (event) => {
    const video = event.target.closest && event.target.closest("video[data-hoverplay]");
    if (video) video.pause();
  });
  durationRule();
});
