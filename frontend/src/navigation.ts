/**
 * The sidebar, as data. A later capability (datasets, jobs, models, chat) adds its route and one
 * entry here; entries whose route is not registered are dropped, so the menu never links to a
 * page that does not exist.
 */
import {
  ChatDotRound,
  Connection,
  Cpu,
  DataBoard,
  Document,
  Files,
  Histogram,
  Box,
  Setting,
  User,
  UserFilled,
  Opportunity,
  DataAnalysis,
  Monitor,
  Odometer,
  SetUp,
  Warning,
} from '@element-plus/icons-vue'
import type { Component } from 'vue'

import type { Role } from '@/api/client'

export interface NavItem {
  /** Route name; also the menu index. */
  routeName: string
  labelKey: string
  icon: Component
  testId: string
}

export interface NavSection {
  key: string
  titleKey: string
  icon: Component
  /** Roles allowed to see the section; undefined means every logged-in user. */
  roles?: readonly Role[]
  items: NavItem[]
}

export const NAV_SECTIONS: readonly NavSection[] = [
  {
    key: 'workspace',
    titleKey: 'nav.workspace',
    icon: DataBoard,
    items: [
      { routeName: 'dashboard', labelKey: 'nav.dashboard', icon: DataBoard, testId: 'nav-dashboard' },
      { routeName: 'datasets', labelKey: 'nav.datasets', icon: Files, testId: 'nav-datasets' },
      { routeName: 'jobs', labelKey: 'nav.jobs', icon: Histogram, testId: 'nav-jobs' },
      { routeName: 'evaluations', labelKey: 'nav.evaluations', icon: DataAnalysis, testId: 'nav-evaluations' },
      { routeName: 'models', labelKey: 'nav.models', icon: Box, testId: 'nav-models' },
      { routeName: 'chat', labelKey: 'nav.chat', icon: ChatDotRound, testId: 'nav-chat' },
      { routeName: 'playground', labelKey: 'nav.playground', icon: Opportunity, testId: 'nav-playground' },
      { routeName: 'deployments', labelKey: 'nav.deployments', icon: Cpu, testId: 'nav-deployments' },
      { routeName: 'providers', labelKey: 'nav.providers', icon: Connection, testId: 'nav-providers' },
    ],
  },
  {
    key: 'account',
    titleKey: 'nav.account',
    icon: User,
    items: [
      { routeName: 'profile', labelKey: 'nav.profile', icon: User, testId: 'nav-profile' },
      { routeName: 'usage-mine', labelKey: 'nav.myUsage', icon: Odometer, testId: 'nav-usage-mine' },
    ],
  },
  {
    key: 'operations',
    titleKey: 'nav.operations',
    icon: Monitor,
    roles: ['operator', 'admin'],
    items: [
      { routeName: 'nodes', labelKey: 'nav.nodes', icon: Monitor, testId: 'nav-nodes' },
      { routeName: 'alerts', labelKey: 'nav.alerts', icon: Warning, testId: 'nav-alerts' },
      { routeName: 'alert-rules', labelKey: 'nav.alertRules', icon: SetUp, testId: 'nav-alert-rules' },
    ],
  },
  {
    key: 'admin',
    titleKey: 'nav.administration',
    icon: Setting,
    roles: ['admin'],
    items: [
      { routeName: 'admin-users', labelKey: 'nav.users', icon: UserFilled, testId: 'nav-admin-users' },
      { routeName: 'admin-audit', labelKey: 'nav.audit', icon: Document, testId: 'nav-admin-audit' },
      { routeName: 'usage-all', labelKey: 'nav.usageAll', icon: Odometer, testId: 'nav-usage-all' },
    ],
  },
]

/** The sections a user sees: allowed for their role, containing only routes that exist. */
export function visibleSections(
  sections: readonly NavSection[],
  role: Role | undefined,
  hasRoute: (name: string) => boolean,
): NavSection[] {
  return sections
    .filter((section) => section.roles === undefined || (role !== undefined && section.roles.includes(role)))
    .map((section) => ({ ...section, items: section.items.filter((item) => hasRoute(item.routeName)) }))
    .filter((section) => section.items.length > 0)
}
