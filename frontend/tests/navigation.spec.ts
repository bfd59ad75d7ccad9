import { describe, expect, it } from 'vitest'

import { NAV_SECTIONS, visibleSections } from '@/navigation'
import { routes } from '@/router'

function routeNames(records = routes): string[] {
  return records.flatMap((r) => [...(typeof r.name === 'string' ? [r.name] : []), ...routeNames(r.children ?? [])])
}

const hasRoute = (name: string) => routeNames().includes(name)

describe('sidebar navigation', () => {
  it('links only to routes that exist', () => {
    for (const section of NAV_SECTIONS) {
      for (const item of section.items) expect(hasRoute(item.routeName), item.routeName).toBe(true)
    }
  })

  it('shows the admin section to admins only', () => {
    const forResearcher = visibleSections(NAV_SECTIONS, 'researcher', hasRoute).map((s) => s.key)
    const forAdmin = visibleSections(NAV_SECTIONS, 'admin', hasRoute).map((s) => s.key)
    expect(forResearcher).not.toContain('admin')
    expect(forAdmin).toContain('admin')
  })

  it('drops entries whose page is not registered, and then empty sections', () => {
    const future = [
      ...NAV_SECTIONS,
      {
        key: 'training',
        titleKey: 'nav.workspace',
        icon: NAV_SECTIONS[0]!.icon,
        items: [
          { routeName: 'evaluation', labelKey: 'nav.dashboard', icon: NAV_SECTIONS[0]!.icon, testId: 'nav-evaluation' },
        ],
      },
    ]
    expect(visibleSections(future, 'admin', hasRoute).map((s) => s.key)).not.toContain('training')
  })

  it('guards admin pages in the route table', () => {
    const adminRoutes = routes.flatMap((r) => r.children ?? []).filter((r) => String(r.path).startsWith('admin/'))
    expect(adminRoutes.length).toBeGreaterThan(0)
    for (const route of adminRoutes) expect(route.meta?.requiresAdmin, String(route.name)).toBe(true)
  })
})
