import { createRouter, createWebHistory, type RouteRecordRaw, type Router } from 'vue-router'

import { useAuthStore } from '@/stores/auth'

declare module 'vue-router' {
  interface RouteMeta {
    /** Reachable without a session (login, register). */
    public?: boolean
    /** Only for logged-out visitors: a logged-in user is sent to the dashboard. */
    guestOnly?: boolean
    /** Only for the admin role. */
    requiresAdmin?: boolean
    /** Only for operators and admins. */
    requiresStaff?: boolean
    /** i18n key of the page title. */
    titleKey?: string
    /** The sidebar entry to highlight when this page is not itself in the sidebar. */
    navRoute?: string
  }
}

export const routes: RouteRecordRaw[] = [
  {
    path: '/login',
    name: 'login',
    component: () => import('@/views/LoginView.vue'),
    meta: { public: true, guestOnly: true, titleKey: 'auth.loginTitle' },
  },
  {
    path: '/register',
    name: 'register',
    component: () => import('@/views/RegisterView.vue'),
    meta: { public: true, guestOnly: true, titleKey: 'auth.registerTitle' },
  },
  {
    path: '/forgot-password',
    name: 'forgot-password',
    component: () => import('@/views/ForgotPasswordView.vue'),
    meta: { public: true, guestOnly: true, titleKey: 'accountLinks.forgotTitle' },
  },
  {
    path: '/reset-password',
    name: 'reset-password',
    component: () => import('@/views/ResetPasswordView.vue'),
    meta: { public: true, guestOnly: true, titleKey: 'accountLinks.resetTitle' },
  },
  {
    path: '/',
    component: () => import('@/layouts/AppLayout.vue'),
    children: [
      { path: '', redirect: { name: 'dashboard' } },
      {
        path: 'dashboard',
        name: 'dashboard',
        component: () => import('@/views/DashboardView.vue'),
        meta: { titleKey: 'nav.dashboard' },
      },
      {
        path: 'datasets',
        name: 'datasets',
        component: () => import('@/views/datasets/DatasetsView.vue'),
        meta: { titleKey: 'nav.datasets' },
      },
      {
        path: 'datasets/:id(\\d+)',
        name: 'dataset-detail',
        component: () => import('@/views/datasets/DatasetDetailView.vue'),
        meta: { titleKey: 'nav.datasets', navRoute: 'datasets' },
      },
      {
        path: 'jobs',
        name: 'jobs',
        component: () => import('@/views/jobs/JobsView.vue'),
        meta: { titleKey: 'nav.jobs' },
      },
      {
        path: 'jobs/new',
        name: 'job-new',
        component: () => import('@/views/jobs/JobNewView.vue'),
        meta: { titleKey: 'nav.jobs', navRoute: 'jobs' },
      },
      {
        path: 'jobs/compare',
        name: 'jobs-compare',
        component: () => import('@/views/jobs/JobsCompareView.vue'),
        meta: { titleKey: 'nav.jobs', navRoute: 'jobs' },
      },
      {
        path: 'jobs/:id(\\d+)',
        name: 'job-detail',
        component: () => import('@/views/jobs/JobDetailView.vue'),
        meta: { titleKey: 'nav.jobs', navRoute: 'jobs' },
      },
      {
        path: 'evaluations',
        name: 'evaluations',
        component: () => import('@/views/evaluations/EvaluationsView.vue'),
        meta: { titleKey: 'nav.evaluations' },
      },
      {
        path: 'evaluations/new',
        name: 'evaluation-new',
        component: () => import('@/views/evaluations/EvaluationNewView.vue'),
        meta: { titleKey: 'nav.evaluations', navRoute: 'evaluations' },
      },
      {
        path: 'evaluations/compare',
        name: 'evaluations-compare',
        component: () => import('@/views/evaluations/EvaluationsCompareView.vue'),
        meta: { titleKey: 'nav.evaluations', navRoute: 'evaluations' },
      },
      {
        path: 'evaluations/:id(\\d+)',
        name: 'evaluation-detail',
        component: () => import('@/views/evaluations/EvaluationDetailView.vue'),
        meta: { titleKey: 'nav.evaluations', navRoute: 'evaluations' },
      },
      {
        path: 'models',
        name: 'models',
        component: () => import('@/views/models/ModelsView.vue'),
        meta: { titleKey: 'nav.models' },
      },
      {
        path: 'models/:id(\\d+)',
        name: 'model-detail',
        component: () => import('@/views/models/ModelDetailView.vue'),
        meta: { titleKey: 'nav.models', navRoute: 'models' },
      },
      {
        path: 'deployments',
        name: 'deployments',
        component: () => import('@/views/models/DeploymentsView.vue'),
        meta: { titleKey: 'nav.deployments' },
      },
      {
        path: 'providers',
        name: 'providers',
        component: () => import('@/views/models/ProvidersView.vue'),
        meta: { titleKey: 'nav.providers' },
      },
      {
        path: 'chat',
        name: 'chat',
        component: () => import('@/views/chat/ChatView.vue'),
        meta: { titleKey: 'nav.chat' },
      },
      {
        path: 'chat/:id(\\d+)',
        name: 'chat-conversation',
        component: () => import('@/views/chat/ChatView.vue'),
        meta: { titleKey: 'nav.chat', navRoute: 'chat' },
      },
      {
        path: 'playground',
        name: 'playground',
        component: () => import('@/views/chat/PlaygroundView.vue'),
        meta: { titleKey: 'nav.playground' },
      },
      {
        path: 'profile',
        name: 'profile',
        component: () => import('@/views/ProfileView.vue'),
        meta: { titleKey: 'nav.profile' },
      },
      // operations: nodes (routes added by the nodes pages)
      {
        path: 'operations/nodes',
        name: 'nodes',
        component: () => import('@/views/operations/NodesView.vue'),
        meta: { requiresStaff: true, titleKey: 'nav.nodes' },
      },
      {
        path: 'operations/nodes/:id(\\d+)',
        name: 'node-detail',
        component: () => import('@/views/operations/NodeDetailView.vue'),
        meta: { requiresStaff: true, titleKey: 'nav.nodes', navRoute: 'nodes' },
      },
      // operations: alerts, usage, accounts (routes added by those pages)
      {
        path: 'operations/alerts',
        name: 'alerts',
        component: () => import('@/views/operations/AlertsView.vue'),
        meta: { requiresStaff: true, titleKey: 'nav.alerts' },
      },
      {
        path: 'operations/alert-rules',
        name: 'alert-rules',
        component: () => import('@/views/operations/AlertRulesView.vue'),
        meta: { requiresStaff: true, titleKey: 'nav.alertRules' },
      },
      {
        path: 'usage',
        name: 'usage-mine',
        component: () => import('@/views/usage/MyUsageView.vue'),
        meta: { titleKey: 'nav.myUsage' },
      },
      {
        path: 'admin/usage',
        name: 'usage-all',
        component: () => import('@/views/usage/UsageReportView.vue'),
        meta: { requiresAdmin: true, titleKey: 'nav.usageAll' },
      },
      {
        path: 'admin/users',
        name: 'admin-users',
        component: () => import('@/views/admin/UsersView.vue'),
        meta: { requiresAdmin: true, titleKey: 'nav.users' },
      },
      {
        path: 'admin/audit',
        name: 'admin-audit',
        component: () => import('@/views/admin/AuditView.vue'),
        meta: { requiresAdmin: true, titleKey: 'nav.audit' },
      },
      {
        path: ':pathMatch(.*)*',
        name: 'not-found',
        component: () => import('@/views/NotFoundView.vue'),
        meta: { titleKey: 'notFound.title' },
      },
    ],
  },
]

/** Install the guards: restore the session once, then enforce public / guest / admin rules. */
export function installGuards(router: Router): void {
  router.beforeEach(async (to) => {
    const auth = useAuthStore()
    await auth.init()
    if (to.meta.guestOnly && auth.isAuthenticated) return { name: 'dashboard' }
    if (!to.meta.public && !auth.isAuthenticated) {
      return { name: 'login', query: to.fullPath === '/' ? {} : { redirect: to.fullPath } }
    }
    if (to.meta.requiresAdmin && !auth.isAdmin) return { name: 'dashboard' }
    if (to.meta.requiresStaff && !auth.isStaff) return { name: 'dashboard' }
    return true
  })
}

export function createAppRouter(): Router {
  const router = createRouter({ history: createWebHistory(import.meta.env.BASE_URL), routes })
  installGuards(router)
  return router
}
