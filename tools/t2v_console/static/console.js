// t2v console: live updates without reloading, in plain JavaScript (no build step, no libraries).
// Sections marked data-live="URL" are refreshed from server-rendered HTML fragments every
// data-every milliseconds; a section marked data-stop-when-terminal stops once its job has ended.
// When the API (or the console) does not answer in time, the page says "reconnecting" and dims
// what it shows until an answer comes.
"use strict";

const API_TIMEOUT_MS = Number(document.body.dataset.apiTimeoutMs || 5000);

function fragment(html) {
  const template = document.createElement("template");
  template.innerHTML = html;
  return template.content;
}

class Unreachable extends Error {}

// A fragment's HTML; Unreachable (with the console's words) when there is none in time.
async function fetchHtml(url) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), API_TIMEOUT_MS + 3000);
  let response;
  try {
    response = await fetch(url, { headers: { Accept: "text/html" }, signal: controller.signal });
  } catch (error) {
    throw new Unreachable(controller.signal.aborted ? "the console did not answer in time" : "the console cannot be reached");
  } finally {
    clearTimeout(timer);
  }
  const html = await response.text();
  if (response.status >= 500) {
    const said = fragment(html).textContent.trim();
    throw new Unreachable(said || `HTTP ${response.status}`);
  }
  return { ok: response.ok, html };
}

function clock() {
  return new Date().toLocaleTimeString([], { hour12: false });
}

let lastGood = clock();
function connection(problem) {
  const banner = document.getElementById("connection");
  for (const section of document.querySelectorAll("[data-live]")) section.classList.toggle("stale", Boolean(problem));
  if (!banner) return;
  if (problem) {
    banner.textContent = `Reconnecting to the API… (${problem}; shown as of ${lastGood})`;
    banner.hidden = false;
  } else {
    lastGood = clock();
    banner.hidden = true;
  }
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
  thumbnails(target);
  applySearch();
}

async function refresh(section) {
  const { ok, html } = await fetchHtml(section.dataset.live);
  if (!ok) return true;
  if (section.id === "gallery") {
    merge(section, html);
    return true;
  }
  // A revised estimate (or a lagging read) may lower the API's fraction; a bar on screen never moves
  // backwards. Bars are matched by data-bar (a list of batches), else by their place.
  const bars = (root) => [...root.querySelectorAll("progress[value]")].map((bar, i) => [bar.dataset.bar || `#${i}`, bar]);
  const before = new Map(bars(section).map(([key, bar]) => [key, bar.value]));
  section.innerHTML = html;
  for (const [key, after] of bars(section)) {
    const shown = before.get(key);
    if (shown === undefined || after.value >= shown) continue;
    after.value = shown;
    const percent = after.dataset.bar
      ? section.querySelector(`[data-percent="${CSS.escape(after.dataset.bar)}"]`)
      : section.querySelector("#percent");
    if (percent) percent.textContent = `${Math.round(shown * 100)}${after.dataset.bar ? "%" : " %"}`;
  }
  const live = section.querySelector("[data-terminal]");
  if (live && live.dataset.terminal === "1") {
    finished(live);
    await loadPlayer();
    return !section.hasAttribute("data-stop-when-terminal");
  }
  return true;
}

async function loadPlayer() {
  const player = document.getElementById("player");
  if (!player || player.querySelector("video")) return;
  const { ok, html } = await fetchHtml(player.dataset.src);
  if (ok) player.innerHTML = html;
}

function follow(section) {
  const every = Number(section.dataset.every || 2000);
  const tick = async () => {
    let again = true;
    try {
      again = await refresh(section);
      connection(null);
    } catch (error) {
      connection(error instanceof Unreachable ? error.message : String(error));
      again = true; // the API or the console restarting: try again next tick
    }
    if (again) setTimeout(tick, every);
  };
  const live = section.querySelector("[data-terminal]");
  if (live && live.dataset.terminal === "1" && section.hasAttribute("data-stop-when-terminal")) return;
  setTimeout(tick, every);
}

// The page shown when the API did not answer: it reloads itself once the API is back.
function reloadWhenBack(box) {
  const tick = async () => {
    try {
      await fetchHtml(box.dataset.reloadWhenBack);
      window.location.reload();
      return;
    } catch (error) {
      const said = document.getElementById("retrying");
      if (said) said.textContent = `Still reconnecting (${clock()}): ${error.message}`;
    }
    setTimeout(tick, 2000);
  };
  setTimeout(tick, 2000);
}

function applySearch() {
  const box = document.getElementById("filter-text");
  if (!box) return;
  const words = box.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
  for (const card of document.querySelectorAll("#gallery > [data-text], #more > [data-text]")) {
    card.hidden = !words.every((w) => card.dataset.text.includes(w));
  }
}

// A card's first frame: the #t=0.1 fragment asks for it; a browser that stops at the metadata is
// nudged to decode one frame, so that no finished card stays black.
function thumbnails(root) {
  for (const video of root.querySelectorAll("video[data-thumb]:not([data-thumbed])")) {
    video.dataset.thumbed = "1";
    const nudge = () => {
      if (video.readyState < 2 && video.paused) video.currentTime = 0.1;
    };
    if (video.readyState >= 1) nudge();
    else video.addEventListener("loadedmetadata", nudge, { once: true });
  }
}

async function loadMore(button) {
  const url = new URL(button.dataset.src, window.location.href);
  url.searchParams.set("cursor", button.dataset.cursor);
  button.disabled = true;
  try {
    const { ok, html } = await fetchHtml(url.toString());
    if (!ok) return;
    const incoming = fragment(html);
    const more = document.getElementById("more");
    const shown = new Set([...document.querySelectorAll("[data-job]")].map((n) => n.dataset.job));
    let next = "";
    for (const node of Array.from(incoming.children)) {
      if (node.dataset.nextCursor !== undefined) next = node.dataset.nextCursor;
      else if (!node.dataset.job || !shown.has(node.dataset.job)) more.appendChild(node);
    }
    button.dataset.cursor = next;
    button.hidden = !next;
    thumbnails(more);
    applySearch();
    connection(null);
  } catch (error) {
    connection(error.message);
  } finally {
    button.disabled = false;
  }
}

async function copy(button) {
  const text = button.dataset.copy || "";
  const said = document.getElementById("copied");
  try {
    await navigator.clipboard.writeText(text);
    if (said) said.textContent = `copied ${text.length > 40 ? text.slice(0, 40) + "…" : text}`;
  } catch (error) {
    if (said) said.textContent = "cannot copy here: select the text instead";
  }
}

// Notifications: asked for on a click; a watched job announces its end once.
const WATCH = "t2v-watch-";
async function watch(button) {
  if (!("Notification" in window)) {
    button.textContent = "this browser cannot notify";
    return;
  }
  const permission = await Notification.requestPermission();
  if (permission !== "granted") {
    button.textContent = "notifications are blocked for this page";
    return;
  }
  sessionStorage.setItem(WATCH + button.dataset.job, button.dataset.prompt || "");
  button.textContent = "You will be notified";
  button.disabled = true;
}

function finished(live) {
  const job = live.dataset.job;
  const notify = document.getElementById("notify");
  if (notify) notify.hidden = true;
  const prompt = sessionStorage.getItem(WATCH + job);
  if (prompt === null) return;
  sessionStorage.removeItem(WATCH + job);
  if ("Notification" in window && Notification.permission === "granted") {
    new Notification(`t2v: ${live.dataset.status}`, { body: prompt || job, tag: job });
  }
}

// The duration rule, as the form's choices: a 1080P size or resolution offers 5 and 8 s only.
function durationRule(root) {
  const size = root.querySelector("#size, #resolution");
  const duration = root.querySelector("#duration");
  if (!size || !duration) return;
  const apply = () => {
    const said = size.selectedOptions[0] && size.selectedOptions[0].dataset.durations;
    const allowed = said ? said.split(",") : [...duration.options].map((o) => o.value);
    for (const option of duration.options) option.disabled = !allowed.includes(option.value);
    if (duration.selectedOptions[0] && duration.selectedOptions[0].disabled) duration.value = allowed[0];
  };
  size.addEventListener("change", apply);
  apply();
}

// The model picker: the chosen model's fields are swapped in from their <template>, keeping the
// values of the fields both models have.
function modelSwitch() {
  const picker = document.querySelector("[data-switch-model]");
  const box = document.getElementById("model-fields");
  if (!picker || !box) return;
  const plain = "select, input:not([type=file]):not([type=hidden])";
  picker.addEventListener("change", () => {
    const template = [...document.querySelectorAll("template[data-model-template]")].find(
      (t) => t.dataset.modelTemplate === picker.value,
    );
    if (!template) return;
    const before = new Map();
    for (const field of box.querySelectorAll(plain)) before.set(field.name, field.type === "checkbox" ? field.checked : field.value);
    const fresh = template.content.cloneNode(true);
    for (const field of fresh.querySelectorAll(plain)) {
      if (!before.has(field.name)) continue;
      const value = before.get(field.name);
      if (field.type === "checkbox") field.checked = value;
      else if (field.tagName !== "SELECT" || [...field.options].some((o) => o.value === value)) field.value = value;
    }
    box.replaceChildren(fresh);
    const label = document.querySelector("label[for=prompt]");
    if (label) label.textContent = template.dataset.promptRequired === "1" ? "Prompt" : "Prompt (optional for this model)";
    for (const old of document.querySelectorAll("#new-video .field-error")) if (!box.contains(old)) old.remove();
    durationRule(box);
    imageInputs(box);
  });
}

// An image's type by its first bytes (never its name), as the server checks it.
const IMAGE_MAGIC = [
  ["jpeg", (b) => b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff],
  ["png", (b) => b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47],
  ["webp", (b) => text(b, 0, 4) === "RIFF" && text(b, 8, 12) === "WEBP"],
  ["gif", (b) => text(b, 0, 3) === "GIF"],
];
function text(bytes, from, to) {
  return String.fromCharCode(...bytes.slice(from, to));
}
function humanBytes(n) {
  if (n >= 1048576) return `${+(n / 1048576).toFixed(6)} MiB`;
  if (n >= 1024) return `${+(n / 1024).toFixed(6)} KiB`;
  return `${n} bytes`;
}
async function imageProblem(file, fields) {
  const formats = (fields.dataset.formats || "jpeg,png,webp").split(",");
  const max = Number(fields.dataset.maxBytes || 0);
  const head = new Uint8Array(await file.slice(0, 16).arrayBuffer());
  const found = IMAGE_MAGIC.find(([, test]) => test(head));
  const kind = found ? found[0] : null;
  const accepted = formats.map((f) => f.toUpperCase()).join(", ");
  if (!file.size) return `${file.name}: the image is empty`;
  if (!kind || !formats.includes(kind)) {
    return `${file.name}: ${kind ? kind.toUpperCase() : "not an image its bytes show"}; accepted: ${accepted} (checked by content, not name)`;
  }
  if (max && file.size > max) return `${file.name}: ${humanBytes(file.size)} is over the limit of ${humanBytes(max)}`;
  return null;
}

// Image inputs: chosen or dropped, checked here (type by content, size), previewed.
function imageInputs(root) {
  for (const input of root.querySelectorAll("[data-image-input]")) {
    const zone = input.closest("[data-drop]");
    const fields = input.closest(".model-fields");
    const error = zone.querySelector(".field-error");
    const preview = zone.querySelector(".preview");
    const chosen = async () => {
      const file = input.files[0];
      if (!file) return;
      error.hidden = true;
      preview.hidden = true;
      const problem = await imageProblem(file, fields);
      if (problem) {
        error.textContent = problem;
        error.hidden = false;
        input.value = "";
        return;
      }
      if (preview.src) URL.revokeObjectURL(preview.src);
      preview.src = URL.createObjectURL(file);
      preview.hidden = false;
    };
    input.addEventListener("change", chosen);
    zone.addEventListener("dragover", (event) => {
      event.preventDefault();
      zone.classList.add("over");
    });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      zone.classList.remove("over");
      const files = event.dataTransfer.files;
      if (!files.length) return;
      const one = new DataTransfer(); // one image per input: the first dropped
      one.items.add(files[0]);
      input.files = one.files;
      chosen();
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  for (const section of document.querySelectorAll("[data-live]")) follow(section);
  for (const box of document.querySelectorAll("[data-reload-when-back]")) reloadWhenBack(box);
  for (const field of document.querySelectorAll("[data-autosubmit]")) {
    field.addEventListener("change", () => field.form.submit());
  }
  const box = document.getElementById("filter-text");
  if (box) {
    box.addEventListener("input", applySearch);
    box.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        box.form.submit(); // the words go to the server: every page of jobs is searched
      }
    });
    applySearch();
  }
  const prompt = document.getElementById("prompt");
  if (prompt) {
    prompt.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        prompt.form.requestSubmit();
      }
    });
  }
  document.addEventListener("click", (event) => {
    const target = event.target.closest && event.target.closest("button");
    if (!target) return;
    if (target.dataset.copy !== undefined) copy(target);
    else if (target.id === "load-more") loadMore(target);
    else if (target.id === "notify") watch(target);
  });
  document.addEventListener("mouseover", (event) => {
    const video = event.target.closest && event.target.closest("video[data-hoverplay]");
    if (video) video.play().catch(() => {});
  });
  document.addEventListener("mouseout", (event) => {
    const video = event.target.closest && event.target.closest("video[data-hoverplay]");
    if (video) video.pause();
  });
  thumbnails(document);
  durationRule(document);
  modelSwitch();
  imageInputs(document);
});
