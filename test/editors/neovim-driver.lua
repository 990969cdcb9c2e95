-- Loaded after the README's snippet (which nvim read as its init.lua) has attached bpf-stack-lens to
-- the seed: does what a user does and waits as a user would (diagnostics, a hover on `entry`, the
-- CodeLens the snippet's CursorHold autocmd asks for, a typed line undone), then writes what Neovim holds as JSON to
-- $BSL_RESULT for test/editors/neovim.test.mjs to judge. Runs on Neovim 0.7 and 0.10+.
local buf = vim.api.nvim_get_current_buf()
local version = vim.version()
local result = { version = string.format('%d.%d.%d', version.major, version.minor, version.patch), clients = {}, diagnostics = {}, hover = vim.NIL, lenses = {} }

vim.wait(30000, function() return #vim.diagnostic.get(buf) > 0 end, 100)
local clients = vim.lsp.get_clients and vim.lsp.get_clients({ bufnr = buf }) or vim.lsp.buf_get_clients(buf)
for _, client in pairs(clients) do table.insert(result.clients, { name = client.name, root = client.config.root_dir }) end
for _, diagnostic in ipairs(vim.diagnostic.get(buf)) do
  table.insert(result.diagnostics, { lnum = diagnostic.lnum, message = diagnostic.message, source = diagnostic.source, severity = diagnostic.severity })
end

local position = { line = tonumber(os.getenv('BSL_HOVER_LINE')), character = tonumber(os.getenv('BSL_HOVER_CHARACTER')) }
local hovers = vim.lsp.buf_request_sync(buf, 'textDocument/hover', { textDocument = { uri = vim.uri_from_bufnr(buf) }, position = position }, 10000)
for _, response in pairs(hovers or {}) do
  if response.result then result.hover = response.result.contents.value end
end

-- The lenses appear once the snippet's autocmd has refreshed them after the server answered.
vim.wait(20000, function()
  vim.cmd('doautocmd CursorHold')
  return #vim.lsp.codelens.get(buf) > 0
end, 500)
for _, lens in ipairs(vim.lsp.codelens.get(buf)) do
  if lens.command then table.insert(result.lenses, { line = lens.range.start.line, title = lens.command.title }) end
end

-- Type a line, then undo back to the saved text: the object describes the buffer again, so its
-- error must come back fresh (no "unsaved changes", no second diagnostic from the estimate).
local function tail_call_diagnostics()
  local found = {}
  for _, diagnostic in ipairs(vim.diagnostic.get(buf)) do
    if diagnostic.message:find('^tail_calls are not allowed') then
      table.insert(found, { lnum = diagnostic.lnum, message = diagnostic.message, source = diagnostic.source, severity = diagnostic.severity })
    end
  end
  return found
end
vim.api.nvim_buf_set_lines(buf, 0, 0, false, { '// typed, then undone' })
vim.wait(15000, function()
  for _, diagnostic in ipairs(tail_call_diagnostics()) do
    if diagnostic.message:find('stale') then return true end
  end
  return false
end, 100)
result.edited = tail_call_diagnostics()
vim.cmd('silent undo')
vim.wait(15000, function()
  local found = tail_call_diagnostics()
  return #found == 1 and not found[1].message:find('stale')
end, 100)
result.undone = tail_call_diagnostics()
result.modified = vim.api.nvim_buf_get_option(buf, 'modified')

local file = io.open(os.getenv('BSL_RESULT'), 'w')
file:write(vim.fn.json_encode(result))
file:close()
vim.cmd('qall!')
