// impasto studio: wires the form, the image choice, the stage and the history together.
// Plain ES modules, no build step; the API is documented at /docs.

import { SettingsForm } from "./form.js";
import { ImageChoice } from "./images.js";
import { History, Stage } from "./job.js";
import { errorText, getJSON } from "./net.js";

const $ = (id) => document.getElementById(id);
const FINISHED = ["done", "failed", "cancelled"];
const REFRESH_MS = 2000;
const ESTIMATE_RETRY_MS = 1000;

function showError(message) {
  const box = $("error");
  box.textContent = message || "";
  box.hidden = !message;
}

// "about 3 min on this machine" for the size, steps and scales in the form, from the server's
// measured step time (GET /api/estimate); asked again while the server is still timing a step.
function showEstimate(form, images) {
  let timer = null;
  let asked = "";
  const ask = async () => {
    const query = new URLSearchParams({ preset: form.preset });
    for (const name of ["size", "steps", "scales"]) if (form.value(name)) query.set(name, form.value(name));
    const photo = document.querySelector("#content-chosen .chip img"); // its thumbnail keeps its aspect
    if (photo && photo.naturalWidth && photo.naturalHeight) {
      query.set("aspect", (photo.naturalWidth / photo.naturalHeight).toFixed(3));
    } else if (photo) {
      photo.addEventListener("load", later, { once: true }); // ask again once its size is known
    }
    asked = query.toString();
    try {
      const answer = await getJSON(`/api/estimate?${query}`);
      if (asked !== query.toString()) return; // the form changed meanwhile
      const size = query.get("size") ? `${query.get("size")} px: ` : "";
      $("estimate").textContent = answer.text ? `${size}${answer.text}` : "";
      if (answer.seconds === null) timer = setTimeout(ask, ESTIMATE_RETRY_MS);
    } catch {
      if (asked === query.toString()) $("estimate").textContent = ""; // a size beyond the limits: Start says why
    }
  };
  const later = () => {
    asked = ""; // an answer on its way is for the form as it was: dropped
    clearTimeout(timer);
    timer = setTimeout(ask, 250);
  };
  form.onChange(later);
  images.onChange(later);
  ask();
}

async function main() {
  const [studio, examples, jobs] = await Promise.all([
    getJSON("/api/options"),
    getJSON("/api/examples"),
    getJSON("/api/jobs"),
  ]);

  const form = new SettingsForm(studio, {
    form: $("job-form"),
    presetSelect: $("f-preset"),
    mainBox: $("main-fields"),
    moreBox: $("more-fields"),
    resetAll: $("reset-all"),
  });
  const stage = new Stage({
    canvas: $("canvas"),
    placeholder: $("placeholder"),
    progress: $("progress"),
    statusLine: $("status-line"),
    lossLine: $("loss-line"),
    download: $("download"),
    stop: $("stop"),
    restore: $("restore"),
  });
  const history = new History($("history-strip"), (id) => {
    stage.watch(id);
    history.select(id);
  });
  stage.onStatus((status) => history.update(status));

  // New images, or a refusal, begin the next job: a finished job's badge and result leave the
  // stage (they stay in the history), and so does the last error.
  const freshStart = () => {
    if (stage.clearFinished()) history.select(null);
  };
  const refuse = (message) => {
    freshStart();
    showError(message);
  };
  const images = new ImageChoice(
    studio.limits,
    {
      contentBox: $("content-chosen"),
      styleBox: $("style-chosen"),
      contentDrop: $("content-drop"),
      styleDrop: $("style-drop"),
      contentFile: $("content-file"),
      styleFile: $("style-file"),
      grid: $("example-grid"),
    },
    {
      onError: refuse,
      onPick: () => {
        showError("");
        freshStart();
      },
    },
  );
  images.showExamples(examples);
  for (const field of studio.fields.filter((f) => f.upload)) {
    const box = document.querySelector(`[data-field="${field.name}"]`);
    const text = field.name === "init" ? "or start from an image…" : field.multiple ? "pick masks…" : "pick a mask…";
    if (box) images.attachUpload(box, field, text);
  }

  const refreshStart = () => {
    const ready = images.ready();
    $("start").disabled = !ready;
    $("start-hint").textContent = ready ? "Ctrl+Enter" : "Choose a photo and a painting";
    form.lockInit(Boolean(images.init));
  };
  images.onChange(refreshStart);
  form.onChange(refreshStart);
  refreshStart();
  showEstimate(form, images);

  $("job-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    showError("");
    if (!images.ready() || !form.valid()) return;
    const data = new FormData();
    images.appendTo(data);
    form.appendTo(data);
    $("start").disabled = true;
    try {
      const response = await fetch("/api/jobs", { method: "POST", body: data });
      if (!response.ok) {
        refuse(await errorText(response));
        return;
      }
      const { id } = await response.json();
      stage.watch(id);
      history.select(id);
    } catch (error) {
      showError(`The studio cannot be reached: ${error.message}`);
    } finally {
      refreshStart();
    }
  });

  document.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && !$("start").disabled) {
      $("job-form").requestSubmit();
    }
  });

  $("stop").addEventListener("click", async () => {
    if (!stage.job) return;
    $("stop").disabled = true;
    const response = await fetch(`/api/jobs/${stage.job}`, { method: "DELETE" });
    if (response.ok) stage.update(await response.json());
    else showError(await errorText(response));
  });

  $("restore").addEventListener("click", async () => {
    const status = stage.status;
    if (!status) return;
    showError("");
    form.restore(status.preset, status.options);
    try {
      await images.restore(status.inputs);
    } catch (error) {
      showError(`Settings restored, but not the images: ${error.message}`);
    }
  });

  // Keep the jobs that are not on stage up to date (they may be queued behind it, or finish).
  setInterval(async () => {
    const others = [...history.items.values()].some(
      (entry) => entry.status.id !== stage.job && !FINISHED.includes(entry.status.state),
    );
    if (!others) return;
    try {
      const fresh = await getJSON("/api/jobs");
      const ids = new Set(fresh.map((s) => s.id));
      for (const id of [...history.items.keys()]) if (!ids.has(id)) history.remove(id);
      for (const status of fresh) if (status.id !== stage.job) history.update(status);
    } catch {
      /* the server may be restarting; try again later */
    }
  }, REFRESH_MS);

  history.show(jobs);
  const live = jobs.find((s) => !FINISHED.includes(s.state)) || jobs[0];
  if (live) {
    stage.watch(live.id);
    history.select(live.id);
  }
}

main().catch((error) => showError(`The studio failed to start: ${error.message}`));
