// The gallery: every image the session's runs produced, newest first, the live sampling preview,
// and a lightbox (click an image; arrows move, Escape or a click closes). The panel stays folded
// until the first image arrives. "changed" events carry nothing: read `items`.

import { h } from "./dom.js";

const MAX_IMAGES = 200;

export class Gallery extends EventTarget {
  constructor(root, lightbox) {
    super();
    this.root = root;
    this.items = []; // {url, caption}, newest first
    this.preview = h("img", "gallery-preview", "", { alt: "live sampling preview", "data-testid": "gallery-preview" });
    this.preview.hidden = true;
    this.images = h("div", "gallery-images");
    this.empty = h("p", "gallery-empty", "Images from your runs appear here.");
    root.append(h("h2", "", "Gallery"), this.preview, this.empty, this.images);
    this.images.addEventListener("click", (e) => {
      const link = e.target.closest("a");
      if (!link || e.ctrlKey || e.metaKey || e.shiftKey) return; // a modified click opens a tab, as links do
      e.preventDefault();
      this.show(this.items.findIndex((item) => item.url === link.getAttribute("href")));
    });
    this.lightbox = lightbox;
    this.lightboxImage = h("img", "", "", { alt: "", "data-testid": "lightbox-image" });
    this.lightboxCaption = h("p", "caption");
    lightbox.append(this.lightboxImage, this.lightboxCaption);
    lightbox.addEventListener("click", () => { lightbox.hidden = true; });
    document.addEventListener("keydown", (e) => {
      if (lightbox.hidden) return;
      if (e.key === "Escape") lightbox.hidden = true;
      else if (e.key === "ArrowLeft") this.show(this.current - 1);
      else if (e.key === "ArrowRight") this.show(this.current + 1);
    });
  }

  /** Adds one output image (once: a cached output node reports the same file again). */
  add(url, caption) {
    if (this.items.some((item) => item.url === url)) return;
    this.items.unshift({ url, caption });
    this.items.length = Math.min(this.items.length, MAX_IMAGES);
    const link = h("a", "", "", { href: url, target: "_blank", rel: "noopener", title: caption });
    link.append(h("img", "", "", { src: url, alt: caption, loading: "lazy", "data-testid": "gallery-image" }));
    this.images.prepend(link);
    while (this.images.children.length > MAX_IMAGES) this.images.lastChild.remove();
    this.empty.hidden = true;
    document.body.classList.remove("gallery-hidden");
    this.dispatchEvent(new CustomEvent("changed"));
  }

  /** Opens the lightbox on the image at `index` (wrapping around). */
  show(index) {
    if (!this.items.length || (index < 0 && this.lightbox.hidden)) return;
    this.current = (index + this.items.length) % this.items.length;
    const { url, caption } = this.items[this.current];
    this.lightboxImage.src = url;
    this.lightboxCaption.textContent = `${caption} · ${this.current + 1} / ${this.items.length}`;
    this.lightbox.hidden = false;
  }

  showPreview(url) {
    this.preview.hidden = !url;
    if (url) this.preview.src = url;
  }
}
