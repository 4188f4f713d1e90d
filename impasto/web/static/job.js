// Following jobs: the stage shows one job live (server-sent events, a preview that is swapped in
// only once the next image is decoded, so it never flickers); the history strip lists them all.

import { el } from "./form.js";

const FINISHED = ["done", "failed", "cancelled"];

export function clock(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
}

function number(x) {
  if (x === null || x === undefined) return "–";
  return Math.abs(x) >= 1e4 || (Math.abs(x) < 1e-2 && x !== 0) ? x.toExponential(3) : x.toPrecision(4);
}

export function describe(status) {
  const text = describeState(status);
  return status.note ? `${text} (${status.note})` : text; // e.g. run again after a restart
}

function describeState(status) {
  switch (status.state) {
    case "queued":
      return status.position === 1 ? "Queued: next in line." : `Queued: number ${status.position} in line.`;
    case "running": {
      if (status.step === 0) return status.cancel_requested ? "Stopping…" : "Starting: loading the network…";
      const size = status.size ? ` (${status.size[0]}×${status.size[1]})` : "";
      const eta = status.eta === null ? "" : ` · ETA ${clock(status.eta)}`;
      const stopping = status.cancel_requested ? " · stopping…" : "";
      return `Step ${status.step} / ${status.total} · scale ${status.scale}/${status.scales}${size}${eta}${stopping}`;
    }
    case "done":
      return `Done: ${status.step} steps in ${clock(status.elapsed)}.`;
    case "cancelled":
      return status.has_image ? `Stopped at step ${status.step}; the image so far is kept.` : "Cancelled before it started.";
    case "failed":
      return `Failed: ${status.error}`;
    default:
      return status.state;
  }
}

export class Stage {
  constructor({ canvas, placeholder, progress, statusLine, lossLine, download, stop, restore }) {
    this.els = { canvas, placeholder, progress, statusLine, lossLine, download, stop, restore };
    this.preview = canvas.querySelector("#preview");
    this.job = null;
    this.status = null;
    this.source = null;
    this.shown = -1; // image_version on screen
    this.loading = false;
    this.listeners = [];
  }

  watch(id) {
    if (this.job === id) return;
    if (this.source) this.source.close();
    this.job = id;
    this.status = null;
    this.shown = -1;
    this.els.lossLine.textContent = "";
    this.preview.hidden = true;
    this.els.placeholder.hidden = false;
    this.els.placeholder.textContent = "Waiting for the first image…";
    this.source = new EventSource(`/api/jobs/${id}/events`);
    this.source.addEventListener("status", (event) => this.update(JSON.parse(event.data)));
    this.source.addEventListener("gone", () => this.gone());
    this.source.addEventListener("stopping", (event) => this.stopping(JSON.parse(event.data)));
    this.source.addEventListener("error", () => {
      // The browser reconnects by itself; a finished or forgotten job needs no stream.
      if (this.status && FINISHED.includes(this.status.state)) this.source.close();
      else this.recheck();
    });
  }

  // Back to an empty stage if its job has finished (true then); a queued or running job stays.
  clearFinished() {
    if (this.job && !(this.status && FINISHED.includes(this.status.state))) return false;
    if (this.source) this.source.close();
    this.source = null;
    this.job = null;
    this.status = null;
    this.shown = -1;
    const { placeholder, progress, statusLine, lossLine, download, stop, restore } = this.els;
    this.preview.hidden = true;
    placeholder.hidden = false;
    placeholder.textContent = "Your painting appears here, step by step.";
    progress.value = 0;
    statusLine.textContent = "Ready.";
    lossLine.textContent = "";
    download.removeAttribute("href");
    download.setAttribute("aria-disabled", "true");
    stop.disabled = true;
    restore.disabled = true;
    document.title = "impasto studio";
    return true;
  }

  async recheck() {
    const id = this.job;
    const response = await fetch(`/api/jobs/${id}`).catch(() => null);
    if (this.job !== id || !response) return;
    if (response.status === 404) this.gone();
    else if (response.ok) this.update(await response.json());
  }

  // The studio is stopping: the job is kept (and runs when it starts again); reload the page then.
  stopping(last) {
    if (this.source) this.source.close();
    this.els.statusLine.textContent = `${last.state}: ${last.detail}.`;
    this.els.stop.disabled = true;
  }

  gone() {
    if (this.source) this.source.close();
    this.els.statusLine.textContent = "This job has been deleted.";
    this.els.stop.disabled = true;
  }

  // A status may come late (the answer to Stop after the stream's "cancelled"): older ones are ignored.
  update(status) {
    for (const callback of this.listeners) callback(status);
    if (status.id !== this.job || (this.status && status.version < this.status.version)) return;
    this.status = status;
    const { progress, statusLine, lossLine, download, stop, restore } = this.els;
    const finished = FINISHED.includes(status.state);
    progress.max = Math.max(1, status.total);
    progress.value = status.state === "done" ? progress.max : status.step;
    statusLine.replaceChildren(el("span", { class: `badge ${status.state}`, text: status.state }), describe(status));
    if (status.loss !== null) {
      const terms = ["content", "style", "tv"]
        .filter((k) => k in status.losses)
        .map((k) => `${k} ${number(status.losses[k])}`)
        .join(" · ");
      lossLine.textContent = `loss ${number(status.loss)}${terms ? ` (${terms})` : ""} · ${clock(status.elapsed)} elapsed`;
    }
    stop.disabled = finished || status.cancel_requested;
    restore.disabled = false;
    if (status.has_image) {
      download.href = status.download_url;
      download.setAttribute("aria-disabled", "false");
    } else {
      download.removeAttribute("href");
      download.setAttribute("aria-disabled", "true");
    }
    if (!status.has_image && !finished) {
      this.els.placeholder.textContent = status.state === "queued" ? describe(status) : "Waiting for the first image…";
    }
    if (status.state === "failed" && !status.has_image) this.els.placeholder.textContent = "No image: the job failed.";
    if (status.state === "cancelled" && !status.has_image) this.els.placeholder.textContent = "Cancelled.";
    document.title = finished ? "impasto studio" : `${Math.round((100 * status.step) / Math.max(1, status.total))}% · impasto studio`;
    if (status.has_image && status.image_version > this.shown) this.load();
    if (finished && this.source) this.source.close();
  }

  // Fetch the newest image, decode it off screen, then swap it in; one fetch at a time.
  async load() {
    if (this.loading) return;
    this.loading = true;
    try {
      while (this.status && this.status.has_image && this.status.image_version > this.shown) {
        const { id, image_version: version, image_step: step, image_url: url } = this.status;
        const response = await fetch(`${url}?v=${version}`);
        if (!response.ok || this.job !== id) break;
        const blob = await response.blob();
        const next = new Image();
        next.src = URL.createObjectURL(blob);
        await next.decode();
        if (this.job !== id) {
          URL.revokeObjectURL(next.src);
          break;
        }
        next.id = "preview";
        next.className = "preview";
        next.alt = `result of job ${id.slice(0, 8)} at step ${step}`;
        next.dataset.version = String(version);
        next.dataset.step = String(step);
        const old = this.preview;
        old.replaceWith(next);
        if (old.src.startsWith("blob:")) URL.revokeObjectURL(old.src);
        this.preview = next;
        this.shown = version;
        this.els.placeholder.hidden = true;
      }
    } catch (error) {
      console.warn("preview:", error);
    } finally {
      this.loading = false;
    }
  }

  onStatus(callback) {
    this.listeners.push(callback);
  }
}

export class History {
  constructor(strip, onPick) {
    this.strip = strip;
    this.onPick = onPick;
    this.items = new Map(); // id -> {li, status}
    this.current = null;
  }

  show(statuses) {
    for (const status of [...statuses].reverse()) this.update(status);
  }

  update(status) {
    let entry = this.items.get(status.id);
    if (!entry) {
      const button = el("button", { type: "button" });
      button.addEventListener("click", () => this.onPick(status.id));
      const li = el("li", { "data-job": status.id }, button);
      this.strip.prepend(li);
      entry = { li, button, status: null, version: -1 };
      this.items.set(status.id, entry);
    }
    const old = entry.status;
    if (old && status.version < old.version) return; // a late answer: the tile already shows newer
    entry.status = status;
    const finished = FINISHED.includes(status.state);
    const thumb = el("div", { class: "thumb" });
    if (status.has_image && (finished || !old || status.image_version - entry.version >= 10)) {
      entry.version = status.image_version;
      thumb.append(el("img", { src: `${status.image_url}?v=${status.image_version}`, alt: "" }));
    } else if (entry.img && status.has_image) {
      thumb.append(entry.img);
    } else {
      thumb.textContent = status.state === "queued" ? `#${status.position} in line` : status.state;
    }
    entry.img = thumb.querySelector("img");
    const p = status.params;
    const when = new Date(status.created * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    entry.button.replaceChildren(
      thumb,
      el(
        "span",
        {},
        el("span", { class: `badge ${status.state}`, text: status.state }),
        el("time", { datetime: new Date(status.created * 1000).toISOString(), text: when }),
      ),
      el("small", { text: `${p.size}px · ${p.steps} steps · ${status.preset}` }),
      el("small", { text: `${p.content} × ${p.styles.join(", ")}`, title: `${p.content} × ${p.styles.join(", ")}` }),
    );
    entry.button.title = `${describe(status)}\nClick to show; then “Restore settings” to reuse them.`;
    entry.button.classList.toggle("current", status.id === this.current);
  }

  select(id) {
    this.current = id;
    for (const [key, entry] of this.items) entry.button.classList.toggle("current", key === id);
  }

  remove(id) {
    const entry = this.items.get(id);
    if (entry) entry.li.remove();
    this.items.delete(id);
  }
}
