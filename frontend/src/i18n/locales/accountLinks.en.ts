// English messages of the account links: forgot / reset password, accepting an invitation, and the
// admin's invite dialog. accountLinks.zh-CN.ts must have exactly the same keys (its type enforces it).
const accountLinks = {
  forgotLink: 'Forgot password?',
  forgotTitle: 'Reset your password',
  forgotIntro: 'Enter the email address of your account and we will send you a link to choose a new password.',
  send: 'Send the link',
  sentTitle: 'Check your email',
  sent: 'If an account uses {email}, a link to reset its password is on its way. It works once and expires soon.',
  throttled: 'Too many requests for this address. Wait a while, then try again.',
  backToLogin: 'Back to sign in',
  resetTitle: 'Choose a new password',
  inviteTitle: 'Welcome! Choose your password',
  inviteIntro: 'You have been invited to LoRAForge. Choose a password to start.',
  newPassword: 'New password',
  confirmPassword: 'Confirm the new password',
  setPassword: 'Set password',
  missingToken: 'This page needs the link from your email.',
  invalidToken: 'This link is not valid: it was used already, it expired, or a newer one was sent.',
  requestNew: 'Request a new link',
  resetDone: 'Your password is set. Sign in with it.',
  invite: {
    button: 'Invite user',
    title: 'Invite a user',
    username: 'Username',
    email: 'Email',
    role: 'Role',
    submit: 'Invite',
    intro: 'The user gets an email with a link to choose their password.',
    mailSent: 'Invitation sent to {email}',
    notSentTitle: 'No email was sent',
    notSent: 'Mail is not set up, or sending failed. Give {name} this link: it works once and expires.',
    link: 'Invitation link',
  },
}

export default accountLinks
