// The chosen images: a content photo, one or more style paintings, an optional init image.
// Each is a local file (dropped or picked) or a bundled example (sent by name). A file is checked
// as it is chosen, not only at Start: the browser decodes it (for its thumbnail) and the server
// reads it as a job would (POST /api/images/check), so a refusal comes at once, in one line.

import { el } from "./form.js";
import { errorText } from "./net.js";

function fromFile(file) {
  return { kind: "file", file, label: file.name || "image", url: URL.createObjectURL(file) };
}

// Whether the browser can show the image at ``url`` (it may not show some formats Pillow reads).
async function decodes(url) {
  const img = new Image();
  img.src = url;
  try {
    await img.decode();
    return img.naturalWidth > 0;
  } catch {
    return false;
  }
}

// The server's verdict on a file sent in ``field``: null if it takes it, else its message.
async function serverCheck(file, field) {
  const data = new FormData();
  data.append(field, file, file.name || "image");
  const response = await fetch("/api/images/check", { method: "POST", body: data });
  return response.ok ? null : errorText(response);
}

function fromExample(example) {
  return { kind: "example", name: example.name, label: example.title || example.name, url: example.thumbnail_url };
}

function release(item) {
  if (item && item.kind === "file") URL.revokeObjectURL(item.url);
}

export class ImageChoice {
  // onError(message): a choice was refused; onPick(): the user chose something new.
  constructor(limits, { contentBox, styleBox, contentDrop, styleDrop, contentFile, styleFile, grid }, { onError, onPick }) {
    this.limits = limits;
    this.content = null;
    this.styles = [];
    this.extras = new Map(); // upload field (init_image, content_mask, style_mask) -> {field, items, box}
    this.examples = [];
    this.boxes = { contentBox, styleBox };
    this.grid = grid;
    this.onError = onError;
    this.onPick = onPick;
    this.listeners = [];
    this.contentTurn = 0; // the latest content choice wins, even if an earlier check ends later

    contentFile.addEventListener("change", () => {
      if (contentFile.files.length) this.setContent(contentFile.files[0]);
      contentFile.value = "";
    });
    styleFile.addEventListener("change", () => {
      this.addStyles([...styleFile.files]);
      styleFile.value = "";
    });
    this.dropZone(contentDrop, (files) => this.setContent(files[0]));
    this.dropZone(styleDrop, (files) => this.addStyles(files));
  }

  dropZone(zone, accept) {
    zone.addEventListener("dragover", (event) => {
      event.preventDefault();
      zone.classList.add("over");
    });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      zone.classList.remove("over");
      const files = [...event.dataTransfer.files];
      if (files.length) accept(files);
      else this.onError("Drop image files (JPEG, PNG, WebP, ...).");
    });
  }

  // A chosen file as an item, or null once its refusal is shown. ``field``: the job's form field.
  async inspect(file, field) {
    if (!this.checkSize(file)) return null;
    const item = fromFile(file);
    const [shows, refusal] = await Promise.all([
      decodes(item.url),
      serverCheck(file, field).catch(() => undefined), // undefined: the server cannot be reached
    ]);
    if (refusal || (refusal === undefined && !shows)) {
      release(item);
      this.onError(refusal || `${item.label}: not an image this browser can read.`);
      return null;
    }
    if (!shows) item.preview = false; // the server reads it, the browser cannot show it
    return item;
  }

  checkSize(file) {
    if (file.size > this.limits.max_upload_bytes) {
      const mb = (this.limits.max_upload_bytes / 2 ** 20).toFixed(0);
      this.onError(`${file.name} is over the upload limit of ${mb} MB.`);
      return false;
    }
    return true;
  }

  async setContent(fileOrExample) {
    this.onPick();
    const turn = ++this.contentTurn;
    const item = fileOrExample instanceof Blob ? await this.inspect(fileOrExample, "content") : fromExample(fileOrExample);
    if (turn !== this.contentTurn) return release(item); // a later choice came first
    if (!item) return;
    release(this.content);
    this.content = item;
    this.render();
  }

  async addStyles(items) {
    this.onPick();
    for (const choice of items) {
      const item = choice instanceof Blob ? await this.inspect(choice, "style") : fromExample(choice);
      if (!item) continue;
      if (this.styles.length >= this.limits.max_styles) {
        release(item);
        this.onError(`At most ${this.limits.max_styles} style images.`);
        break;
      }
      this.styles.push(item);
      this.render();
    }
  }

  get init() {
    const extra = this.extras.get("init_image");
    return extra && extra.items.length ? extra.items[0] : null;
  }

  async addExtra(upload, files) {
    this.onPick();
    const extra = this.extras.get(upload);
    for (const file of extra.field.multiple ? files : files.slice(-1)) {
      const item = await this.inspect(file, upload);
      if (!item) continue;
      if (!extra.field.multiple) {
        extra.items.forEach(release);
        extra.items = [];
      }
      extra.items.push(item);
      this.render();
    }
  }

  clear() {
    release(this.content);
    this.styles.forEach(release);
    for (const extra of this.extras.values()) {
      extra.items.forEach(release);
      extra.items = [];
    }
    this.content = null;
    this.styles = [];
  }

  chip(item, remove) {
    const close = el("button", { type: "button", title: "remove", text: "×" });
    close.setAttribute("aria-label", `remove ${item.label}`);
    close.addEventListener("click", remove);
    const thumb = item.preview === false ? el("div", { class: "no-preview", text: "no preview" }) : el("img", { src: item.url, alt: "" });
    return el("div", { class: "chip", title: item.label }, thumb, el("span", { text: item.label }), close);
  }

  render() {
    const { contentBox, styleBox } = this.boxes;
    contentBox.replaceChildren();
    if (this.content) {
      contentBox.append(
        this.chip(this.content, () => {
          release(this.content);
          this.content = null;
          this.render();
        }),
      );
    }
    styleBox.replaceChildren(
      ...this.styles.map((item, i) =>
        this.chip(item, () => {
          release(item);
          this.styles.splice(i, 1);
          this.render();
        }),
      ),
    );
    for (const extra of this.extras.values()) {
      extra.box.replaceChildren(
        ...extra.items.map((item, i) =>
          this.chip(item, () => {
            release(item);
            extra.items.splice(i, 1);
            this.render();
          }),
        ),
      );
    }
    for (const callback of this.listeners) callback();
  }

  // A picker for an image option (init image, masks) in its form field's box.
  attachUpload(fieldBox, field, text) {
    const id = `upload-${field.upload}`;
    const input = el("input", { type: "file", accept: "image/*", id, multiple: field.multiple });
    input.addEventListener("change", () => {
      this.addExtra(field.upload, [...input.files]);
      input.value = "";
    });
    const box = el("div", { class: "chosen" });
    const label = el("label", { class: "drop", for: id }, input, el("span", { text }));
    this.dropZone(label, (files) => this.addExtra(field.upload, files));
    fieldBox.append(box, label);
    this.extras.set(field.upload, { field, items: [], box });
  }

  showExamples(examples) {
    this.examples = examples;
    this.grid.replaceChildren(
      ...examples.map((example) => {
        const credit = [example.title, example.author, example.licence].filter(Boolean).join(" — ");
        const asContent = el("button", { type: "button", text: "photo", title: `use ${example.name} as the photo` });
        const asStyle = el("button", { type: "button", text: "+ style", title: `add ${example.name} as a style` });
        asContent.dataset.example = example.name;
        asStyle.dataset.example = example.name;
        asContent.addEventListener("click", () => this.setContent(example));
        asStyle.addEventListener("click", () => this.addStyles([example]));
        return el(
          "figure",
          { class: "example", title: credit },
          el("img", { src: example.thumbnail_url, alt: example.title, loading: "lazy" }),
          el("figcaption", { text: example.name.replaceAll("_", " ") }),
          el("div", { class: "pick" }, asContent, asStyle),
        );
      }),
    );
  }

  ready() {
    return Boolean(this.content) && this.styles.length > 0;
  }

  appendTo(data) {
    const put = (field, exampleField, item) => {
      if (item.kind === "example") data.append(exampleField, item.name);
      else data.append(field, item.file, item.file.name || "image");
    };
    put("content", "content_example", this.content);
    for (const style of this.styles) put("style", "style_example", style);
    for (const [upload, extra] of this.extras) {
      for (const item of extra.items) data.append(upload, item.file, item.file.name || upload);
    }
  }

  // Bring back a finished job's images: examples by name, uploads fetched from the server.
  async restore(inputs) {
    const items = await Promise.all(
      inputs.map(async (input) => {
        if (input.example) {
          const example = this.examples.find((e) => e.name === input.example);
          return { role: input.role, item: example ? fromExample(example) : null };
        }
        const response = await fetch(input.url);
        if (!response.ok) throw new Error(`the images of this job are gone (${response.status})`);
        const blob = await response.blob();
        return { role: input.role, item: fromFile(new File([blob], input.label, { type: blob.type })) };
      }),
    );
    this.clear();
    for (const { role, item } of items) {
      if (!item) continue;
      if (role === "content") this.content = item;
      else if (role === "style") this.styles.push(item);
      else if (this.extras.has(role)) this.extras.get(role).items.push(item);
    }
    this.render();
  }

  onChange(callback) {
    this.listeners.push(callback);
  }
}
