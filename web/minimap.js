// The minimap: the whole graph in a corner, with the visible part framed; click or drag in it to
// look elsewhere. Toggled from the toolbar; redrawn whenever the canvas is.

const WIDTH = 200;
const HEIGHT = 140;
const PAD = 10;

export class Minimap {
  constructor(el, canvas) {
    this.el = el;
    this.canvas = canvas;
    const dpr = window.devicePixelRatio || 1;
    Object.assign(el, { width: WIDTH * dpr, height: HEIGHT * dpr });
    this.frame = null; // the mapping of the last drawing: graph point → minimap pixel
    canvas.addEventListener("drawn", () => { if (!el.hidden) this.draw(); });
    el.addEventListener("pointerdown", (e) => {
      e.stopPropagation();
      el.setPointerCapture(e.pointerId);
      this.lookAt(e);
    });
    el.addEventListener("pointermove", (e) => { if (el.hasPointerCapture(e.pointerId)) this.lookAt(e); });
  }

  toggle() {
    this.el.hidden = !this.el.hidden;
    if (!this.el.hidden) this.draw();
  }

  /** Centres the canvas's view on the graph point under the pointer. */
  lookAt(event) {
    if (!this.frame) return;
    const rect = this.el.getBoundingClientRect();
    const { scale, x0, y0 } = this.frame;
    const gx = (event.clientX - rect.left - PAD) / scale + x0;
    const gy = (event.clientY - rect.top - PAD) / scale + y0;
    const { viewport, view } = this.canvas;
    this.canvas.setView({ scale: view.scale, x: viewport.clientWidth / 2 - gx * view.scale,
      y: viewport.clientHeight / 2 - gy * view.scale });
  }

  draw() {
    const ctx = this.el.getContext("2d");
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, WIDTH, HEIGHT);
    const { canvas } = this;
    const [vx0, vy0] = canvas.toGraph(...corner(canvas.viewport, 0));
    const [vx1, vy1] = canvas.toGraph(...corner(canvas.viewport, 1));
    const [x0, y0, x1, y1] = unionBox(canvas.bounds() ?? [vx0, vy0, vx1, vy1], [vx0, vy0, vx1, vy1]);
    const scale = Math.min((WIDTH - 2 * PAD) / (x1 - x0), (HEIGHT - 2 * PAD) / (y1 - y0));
    this.frame = { scale, x0, y0 };
    const map = (x, y) => [PAD + (x - x0) * scale, PAD + (y - y0) * scale];
    ctx.fillStyle = "rgba(109, 140, 255, 0.25)";
    for (const group of canvas.graph.groups) {
      const [gx, gy, gw, gh] = group.bounding;
      ctx.fillRect(...map(gx, gy), gw * scale, gh * scale);
    }
    ctx.fillStyle = "#6b6e78";
    for (const view of canvas.views.values()) {
      const [bx0, by0, bx1, by1] = view.box();
      ctx.fillRect(...map(bx0, by0), Math.max(2, (bx1 - bx0) * scale), Math.max(2, (by1 - by0) * scale));
    }
    ctx.strokeStyle = "#e4e5e8";
    ctx.lineWidth = 1;
    ctx.strokeRect(...map(vx0, vy0), (vx1 - vx0) * scale, (vy1 - vy0) * scale);
  }
}

function corner(viewport, which) {
  const r = viewport.getBoundingClientRect();
  return which ? [r.right, r.bottom] : [r.left, r.top];
}

function unionBox(a, b) {
  return [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[2], b[2]), Math.max(a[3], b[3])];
}
