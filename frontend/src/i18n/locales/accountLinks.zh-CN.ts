import type accountLinksEn from './accountLinks.en'

// 账号链接（忘记 / 重置密码、接受邀请）和管理员邀请对话框的简体中文。键必须与 accountLinks.en.ts 一致。
const accountLinks: typeof accountLinksEn = {
  forgotLink: '忘记密码？',
  forgotTitle: '重置密码',
  forgotIntro: '输入账号的邮箱地址，我们会发送一个设置新密码的链接。',
  send: '发送链接',
  sentTitle: '请查收邮件',
  sent: '如果有账号使用 {email}，重置密码的链接已经发出。链接只能使用一次，并会很快过期。',
  throttled: '该地址的请求过多，请稍后再试。',
  backToLogin: '返回登录',
  resetTitle: '设置新密码',
  inviteTitle: '欢迎！请设置密码',
  inviteIntro: '你已受邀加入 LoRAForge。设置密码即可开始使用。',
  newPassword: '新密码',
  confirmPassword: '确认新密码',
  setPassword: '设置密码',
  missingToken: '请通过邮件中的链接打开此页面。',
  invalidToken: '链接无效：它已被使用、已过期，或已发送了更新的链接。',
  requestNew: '重新获取链接',
  resetDone: '密码已设置，请用新密码登录。',
  invite: {
    button: '邀请用户',
    title: '邀请用户',
    username: '用户名',
    email: '邮箱',
    role: '角色',
    submit: '邀请',
    intro: '用户会收到一封邮件，通过其中的链接设置密码。',
    mailSent: '邀请已发送至 {email}',
    notSentTitle: '未发送邮件',
    notSent: '邮件未配置或发送失败。请把这个链接交给 {name}：链接只能使用一次，并会过期。',
    link: '邀请链接',
  },
}

export default accountLinks
