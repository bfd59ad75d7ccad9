/**
 * One ECharts instance bound to an element: the one chart lifecycle of the app (dataset statistics,
 * the job page's loss and learning-rate charts, the comparison page, evaluation scores' bars and radar).
 *
 * - Tree-shaken: only the charts and components registered below end up in the bundle (import from
 *   'echarts/core', never from 'echarts').
 * - Follows the app's theme (re-created on a light/dark switch), resizes with its element
 *   (ResizeObserver), and is disposed when the component unmounts.
 * - `live: true` is for charts whose points keep arriving (a running job): each update is merged
 *   into the chart instead of replacing it, so appended points keep the user's zoom window, and
 *   `replaceMerge` drops series that went away (a job removed from a comparison). The option is not
 *   watched deeply: a live chart's arrays are replaced, not mutated, and may hold thousands of points.
 */
import { BarChart, LineChart, PieChart, RadarChart } from 'echarts/charts'
import type { BarSeriesOption, LineSeriesOption, PieSeriesOption, RadarSeriesOption } from 'echarts/charts'
import {
  DataZoomComponent,
  GridComponent,
  LegendComponent,
  RadarComponent,
  TitleComponent,
  TooltipComponent,
} from 'echarts/components'
import type {
  DataZoomComponentOption,
  GridComponentOption,
  LegendComponentOption,
  RadarComponentOption,
  TitleComponentOption,
  TooltipComponentOption,
} from 'echarts/components'
import * as echarts from 'echarts/core'
import type { ComposeOption } from 'echarts/core'
import { CanvasRenderer } from 'echarts/renderers'
import { onBeforeUnmount, onMounted, shallowRef, watch, type Ref } from 'vue'

import { useThemeStore } from '@/stores/theme'

echarts.use([
  BarChart,
  LineChart,
  PieChart,
  RadarChart,
  DataZoomComponent,
  GridComponent,
  LegendComponent,
  RadarComponent,
  TitleComponent,
  TooltipComponent,
  CanvasRenderer,
])

export type ChartOption = ComposeOption<
  | BarSeriesOption
  | LineSeriesOption
  | PieSeriesOption
  | RadarSeriesOption
  | DataZoomComponentOption
  | GridComponentOption
  | LegendComponentOption
  | RadarComponentOption
  | TitleComponentOption
  | TooltipComponentOption
>

export interface EchartsOptions {
  /** Points keep arriving: merge updates (keeps the zoom window) rather than replace the chart. */
  live?: boolean
}

export function useEcharts(
  el: Ref<HTMLElement | null | undefined>,
  option: () => ChartOption,
  { live = false }: EchartsOptions = {},
) {
  const theme = useThemeStore()
  const chart = shallowRef<echarts.ECharts | null>(null)
  let observer: ResizeObserver | null = null

  function render(): void {
    // A transparent background lets the card's own (light or dark) colour show through.
    const next = { backgroundColor: 'transparent', ...option() }
    chart.value?.setOption(next, live ? { replaceMerge: ['series'] } : { notMerge: true })
  }

  function init(): void {
    if (!el.value) return
    chart.value?.dispose()
    chart.value = echarts.init(el.value, theme.isDark ? 'dark' : undefined, { renderer: 'canvas' })
    render()
  }

  onMounted(() => {
    init()
    if (el.value && typeof ResizeObserver !== 'undefined') {
      observer = new ResizeObserver(() => chart.value?.resize())
      observer.observe(el.value)
    }
  })

  watch(option, render, { deep: !live })
  watch(() => theme.isDark, init)

  onBeforeUnmount(() => {
    observer?.disconnect()
    observer = null
    chart.value?.dispose()
    chart.value = null
  })

  return { chart }
}
