// The gallery: every image the session's runs produced, newest first, and the live sampling preview.

import { h } from "./dom.js";

const MAX_IMAGES = 200;

export class Gallery {
  constructor(root) {
    this.root = root;
    this.preview = h("img", "gallery-preview", "", { alt: "live sampling preview", "data-testid": "gallery-preview" });
    this.preview.hidden = true;
    this.images = h("div", "gallery-images");
    this.empty = h("p", "gallery-empty", "Images from your runs appear here.");
    root.append(h("h2", "", "Gallery"), this.preview, this.empty, this.images);
  }

  /** Adds one output image (once: a cached output node reports the same file again). */
  add(url, caption) {
    if ([...this.images.children].some((a) => a.getAttribute("href") === url)) return;
    const link = h("a", "", "", { href: url, target: "_blank", rel: "noopener", title: caption });
    link.append(h("img", "", "", { src: url, alt: caption, loading: "lazy", "data-testid": "gallery-image" }));
    this.images.prepend(link);
    while (this.images.children.length > MAX_IMAGES) this.images.lastChild.remove();
    this.empty.hidden = true;
  }

  showPreview(url) {
    this.preview.hidden = !url;
    if (url) this.preview.src = url;
  }
}
