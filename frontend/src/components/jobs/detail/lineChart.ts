/**
 * ECharts line charts for the job pages. The shared `useEcharts` registers only bar and pie
 * charts (the dataset statistics); this registers line series and data zoom as well, with the
 * same conventions: tree-shaken imports, the app's theme, resize with the element, dispose on unmount.
 */
import { LineChart, type LineSeriesOption } from 'echarts/charts'
import {
  DataZoomComponent,
  GridComponent,
  LegendComponent,
  TooltipComponent,
  type DataZoomComponentOption,
  type GridComponentOption,
  type LegendComponentOption,
  type TooltipComponentOption,
} from 'echarts/components'
import * as echarts from 'echarts/core'
import type { ComposeOption } from 'echarts/core'
import { CanvasRenderer } from 'echarts/renderers'
import { onBeforeUnmount, onMounted, shallowRef, watch, type Ref } from 'vue'

import { useThemeStore } from '@/stores/theme'

echarts.use([LineChart, GridComponent, LegendComponent, TooltipComponent, DataZoomComponent, CanvasRenderer])

export type LineChartOption = ComposeOption<
  LineSeriesOption | GridComponentOption | LegendComponentOption | TooltipComponentOption | DataZoomComponentOption
>

export function useLineChart(el: Ref<HTMLElement | null | undefined>, option: () => LineChartOption) {
  const theme = useThemeStore()
  const chart = shallowRef<echarts.ECharts | null>(null)
  let observer: ResizeObserver | null = null

  function render(): void {
    // Merge (not replace) so a live update keeps the user's zoom window; `replaceMerge` drops
    // series that went away (a job removed from a comparison).
    chart.value?.setOption({ backgroundColor: 'transparent', ...option() }, { replaceMerge: ['series'] })
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
  watch(option, render)
  watch(() => theme.isDark, init)
  onBeforeUnmount(() => {
    observer?.disconnect()
    observer = null
    chart.value?.dispose()
    chart.value = null
  })
  return { chart }
}
