import type { PromptLibraryMessages } from './promptLibrary.en'

const promptLibrary: PromptLibraryMessages = {
  title: '提示词库',
  manage: '管理提示词',
  name: '名称',
  content: '提示词',
  contentHint: '系统提示词。{example} 这样的占位符会成为变量，使用时再填写。',
  variables: '变量',
  detectedVariables: '变量：{names}',
  noVariables: '没有变量。',
  sharedHint: '共享给所有用户（他们可以使用，但不能修改）',
  search: '搜索名称和内容',
  new: '新建提示词',
  edit: '编辑',
  readOnly: '他人共享',
  scopes: {
    all: '全部',
    mine: '我的',
    shared: '共享',
  },
  created: '已保存提示词“{name}”',
  updated: '已更新提示词“{name}”',
  deleted: '已删除提示词“{name}”',
  deleteConfirm: '删除提示词“{name}”？此操作无法撤销。',
}

export default promptLibrary
