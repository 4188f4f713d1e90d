// The settings form, built from GET /api/options: one field per impasto.Options field, with the
// same name and help text, so the page, the API and the CLI never disagree. Fields show the
// preset's values; only fields the user edited are sent (the server fills in the rest).

// The style-strength slider: position = log10(style_strength), the size-invariant balance of the
// default preset: the same position gives the same look at every size.
const STRENGTH_MIN = -1; // strength 0.1: mostly the photo
const STRENGTH_MAX = 2; // strength 100: mostly the painting

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  node.append(...children);
  return node;
}

export { el };

function shown(value) {
  if (value === null || value === undefined) return "";
  if (Array.isArray(value)) return value.join(" ");
  return String(value);
}

export class SettingsForm {
  constructor(studio, { form, presetSelect, mainBox, moreBox, resetAll }) {
    this.studio = studio;
    this.form = form;
    this.presetSelect = presetSelect;
    this.edited = new Set();
    this.inputs = new Map(); // name -> input/select
    this.listeners = [];
    this.initLocked = false;

    for (const name of Object.keys(studio.presets)) {
      presetSelect.append(el("option", { value: name, text: name }));
    }
    presetSelect.value = studio.default_preset;
    presetSelect.addEventListener("change", () => this.applyPreset());
    resetAll.addEventListener("click", () => {
      this.edited.clear();
      this.applyPreset();
    });

    for (const field of studio.fields) {
      (field.main ? mainBox : moreBox).append(this.buildField(field));
    }
    this.applyPreset();
  }

  get preset() {
    return this.presetSelect.value;
  }

  presetValue(name) {
    return shown(this.studio.presets[this.preset][name]);
  }

  buildField(field) {
    const id = `f-${field.name}`;
    let input;
    if (field.kind === "file") {
      // An image option: ImageChoice.attachUpload() adds its picker to this box.
      const box = el("div", { class: "field wide", "data-field": field.name, "data-upload": field.upload });
      box.append(el("label", { text: field.label }), el("small", { class: "help", text: field.help }));
      return box;
    }
    if (field.kind === "bool") {
      input = el("input", { id, name: field.name, type: "checkbox" });
    } else if (field.kind === "choice") {
      input = el("select", { id, name: field.name });
      if (field.optional) input.append(el("option", { value: "", text: "(preset)" }));
      for (const choice of field.choices) input.append(el("option", { value: choice, text: choice }));
    } else if (field.kind === "layers" || field.kind === "numbers") {
      const hint = field.kind === "numbers" ? "numbers separated by spaces" : null;
      input = el("input", { id, name: field.name, type: "text", spellcheck: "false", placeholder: hint });
    } else {
      input = el("input", {
        id,
        name: field.name,
        type: "number",
        inputmode: field.kind === "int" ? "numeric" : "decimal",
        step: field.kind === "int" ? "1" : "any",
        min: field.minimum,
        max: field.maximum,
        placeholder: field.optional ? "preset value" : null,
        required: !field.optional,
      });
    }
    input.title = field.help;
    const reset = el("button", { type: "button", class: "reset", title: "back to the preset's value", text: "↺" });
    reset.setAttribute("aria-label", `reset ${field.label}`);
    const label = el("label", { for: id }, field.label, reset);
    const wide = ["layers", "numbers"].includes(field.kind) ? " wide" : "";
    const box = el("div", { class: `field${wide}${field.kind === "bool" ? " check" : ""}`, "data-field": field.name });
    box.append(label);
    if (field.name === "seed") {
      const dice = el("button", { type: "button", title: "a random seed", text: "random" });
      dice.setAttribute("aria-label", "random seed");
      dice.addEventListener("click", () => {
        this.set("seed", String(Math.floor(Math.random() * 2 ** 31)), true);
      });
      box.append(el("div", { class: "row" }, input, dice));
    } else {
      box.append(input);
    }
    box.append(el("small", { class: "help", text: field.help }));
    this.inputs.set(field.name, input);

    input.addEventListener("input", () => this.markEdited(field.name));
    input.addEventListener("change", () => this.markEdited(field.name));
    reset.addEventListener("click", () => {
      this.edited.delete(field.name);
      this.set(field.name, this.presetValue(field.name), false);
    });
    if (field.name === "style_strength") this.buildStrength(box, input);
    return box;
  }

  // Style strength: one label, a log-scale slider (further right is more painting) beside its number.
  buildStrength(box, strengthInput) {
    const slider = el("input", {
      type: "range",
      id: "f-strength",
      min: STRENGTH_MIN,
      max: STRENGTH_MAX,
      step: "0.05",
      "aria-label": "style strength, slider",
    });
    const sync = () => {
      const strength = Number(strengthInput.value);
      if (strength > 0) slider.value = String(Math.min(STRENGTH_MAX, Math.max(STRENGTH_MIN, Math.log10(strength))));
    };
    slider.addEventListener("input", () => {
      const strength = 10 ** Number(slider.value);
      strengthInput.value = String(Number(strength.toPrecision(2)));
      this.markEdited("style_strength");
    });
    strengthInput.addEventListener("input", sync);
    this.syncStrength = sync;
    const ends = el("div", { class: "ends" }, el("span", { text: "more photo" }), el("span", { text: "more painting" }));
    box.classList.add("strength", "wide");
    const row = el("div", { class: "row" });
    strengthInput.replaceWith(row);
    row.append(slider, strengthInput);
    box.querySelector(".help").before(ends);
  }

  value(name) {
    const input = this.inputs.get(name);
    return input.type === "checkbox" ? String(input.checked) : input.value.trim();
  }

  set(name, value, edited) {
    const input = this.inputs.get(name);
    if (!input) return;
    if (input.type === "checkbox") input.checked = value === "true";
    else input.value = value;
    if (edited) this.edited.add(name);
    input.closest(".field").classList.toggle("edited", this.edited.has(name));
    if (name === "style_strength" && this.syncStrength) this.syncStrength();
    this.emit();
  }

  markEdited(name) {
    this.edited.add(name);
    this.inputs.get(name).closest(".field").classList.add("edited");
    this.emit();
  }

  applyPreset() {
    for (const name of this.inputs.keys()) {
      if (!this.edited.has(name)) this.set(name, this.presetValue(name), false);
    }
    const summary = document.getElementById("preset-summary");
    if (summary) summary.textContent = (this.studio.preset_summaries || {})[this.preset] || "";
  }

  // Put back a job's preset and submitted fields (the rest follow the preset).
  restore(preset, options) {
    this.presetSelect.value = preset in this.studio.presets ? preset : this.studio.default_preset;
    this.edited.clear();
    this.applyPreset();
    for (const [name, value] of Object.entries(options)) {
      if (this.inputs.has(name)) this.set(name, shown(value), true);
    }
  }

  lockInit(locked) {
    const init = this.inputs.get("init");
    if (init) init.disabled = locked;
    this.initLocked = locked;
  }

  valid() {
    return this.form.reportValidity();
  }

  // The preset and the edited, non-empty fields.
  appendTo(data) {
    data.append("preset", this.preset);
    for (const name of this.edited) {
      if (name === "init" && this.initLocked) continue;
      const value = this.value(name);
      if (value !== "") data.append(name, value);
    }
  }

  onChange(callback) {
    this.listeners.push(callback);
  }

  emit() {
    for (const callback of this.listeners) callback();
  }
}
