// ECharts, tree-shaken to the parts the dashboard draws: bar and line
// charts on a grid with tooltips and legends, rendered on canvas.
import * as echarts from "echarts/core";
import { BarChart, LineChart } from "echarts/charts";
import { GridComponent, LegendComponent, TooltipComponent } from "echarts/components";
import { CanvasRenderer } from "echarts/renderers";

echarts.use([BarChart, LineChart, GridComponent, LegendComponent, TooltipComponent, CanvasRenderer]);

export type Chart = echarts.ECharts;
export type Option = echarts.EChartsCoreOption;

const live = new Map<Chart, ResizeObserver>();

/**
 * A chart in el, resized whenever el's size changes; disposed by disposeAll
 * when the page changes.
 */
export function chart(el: HTMLElement): Chart {
  const c = echarts.init(el, undefined, { renderer: "canvas" });
  const ro = new ResizeObserver(() => c.resize());
  ro.observe(el);
  live.set(c, ro);
  return c;
}

export function disposeAll(): void {
  for (const [c, ro] of live) {
    ro.disconnect();
    c.dispose();
  }
  live.clear();
}

export const palette = ["#2f6fdf", "#e8871e", "#1e7b34", "#b3261e", "#7b4dd6", "#0f8b8d"];
