// Loading and error states of a dashboard panel.
import { esc } from "./format";

export class Panel {
  private state: HTMLElement;
  constructor(public el: HTMLElement) {
    this.state = document.createElement("div");
    this.state.className = "state hidden";
    el.appendChild(this.state);
  }
  loading(): void {
    this.el.dataset.state = "loading";
    this.state.className = "state";
    this.state.textContent = "Loading…";
  }
  error(msg: string, retry?: () => void): void {
    this.el.dataset.state = "error";
    this.state.className = "state error";
    this.state.innerHTML = `<div>${esc(msg)}</div>`;
    if (retry) {
      const b = document.createElement("button");
      b.textContent = "Retry";
      b.addEventListener("click", retry);
      this.state.appendChild(b);
    }
  }
  ready(): void {
    this.el.dataset.state = "ready";
    this.state.className = "state hidden";
  }
  /** Runs load under this panel's loading and error states. */
  async run(load: () => Promise<void>, signal: AbortSignal): Promise<void> {
    this.loading();
    try {
      await load();
      if (!signal.aborted) this.ready();
    } catch (e) {
      if (signal.aborted || (e as Error).name === "AbortError") return;
      this.error((e as Error).message, () => void this.run(load, signal));
    }
  }
}
