/**
 * One ECharts instance bound to an element, tree-shaken: only the charts and components
 * registered below end up in the bundle (import from 'echarts/core', never from 'echarts').
 * The chart follows the app's theme, resizes with its element (ResizeObserver) and is
 * disposed when the component unmounts.
 */
import { BarChart, PieChart } from 'echarts/charts'
import { GridComponent, LegendComponent, TitleComponent, TooltipComponent } from 'echarts/components'
import * as echarts from 'echarts/core'
import type { ComposeOption } from 'echarts/core'
import type { BarSeriesOption, PieSeriesOption } from 'echarts/charts'
import type {
  GridComponentOption,
  LegendComponentOption,
  TitleComponentOption,
  TooltipComponentOption,
} from 'echarts/components'
import { CanvasRenderer } from 'echarts/renderers'
import { onBeforeUnmount, onMounted, shallowRef, watch, type Ref } from 'vue'

import { useThemeStore } from '@/stores/theme'

echarts.use([BarChart, PieChart, GridComponent, LegendComponent, TitleComponent, TooltipComponent, CanvasRenderer])

export type ChartOption = ComposeOption<
  | BarSeriesOption
  | PieSeriesOption
  | GridComponentOption
  | LegendComponentOption
  | TitleComponentOption
  | TooltipComponentOption
>

export function useEcharts(el: Ref<HTMLElement | null | undefined>, option: () => ChartOption) {
  const theme = useThemeStore()
  const chart = shallowRef<echarts.ECharts | null>(null)
  let observer: ResizeObserver | null = null

  function render(): void {
    // A transparent background lets the card's own (light or dark) colour show through.
    chart.value?.setOption({ backgroundColor: 'transparent', ...option() }, { notMerge: true })
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

  watch(option, render, { deep: true })
  watch(() => theme.isDark, init)

  onBeforeUnmount(() => {
    observer?.disconnect()
    observer = null
    chart.value?.dispose()
    chart.value = null
  })

  return { chart }
}
