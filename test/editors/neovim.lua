-- Drives bpf-stack-lens from Neovim (0.7+) headless: starts the server over stdio for the buffer,
-- waits for its diagnostics, asks for hover on `entry`, and writes what it saw as JSON to
-- $BSL_RESULT for test/editors/neovim.test.mjs to judge.
local settings = { kernels = { '6.1', '6.18' } }
local client_id = vim.lsp.start_client({
  name = 'bpf-stack-lens',
  cmd = { os.getenv('BSL_NODE'), os.getenv('BSL_BIN'), 'lsp', '--stdio' },
  root_dir = os.getenv('BSL_WORKSPACE'),
  settings = { bpfStackLens = settings },
  init_options = { settings = settings },
})
vim.lsp.buf_attach_client(0, client_id)

local result = { diagnostics = {}, hover = vim.NIL, lenses = {} }
vim.wait(20000, function() return #vim.diagnostic.get(0) > 0 end, 100)
for _, diagnostic in ipairs(vim.diagnostic.get(0)) do
  table.insert(result.diagnostics, {
    lnum = diagnostic.lnum,
    message = diagnostic.message,
    source = diagnostic.source,
    severity = diagnostic.severity,
  })
end

local uri = vim.uri_from_bufnr(0)
local hovers = vim.lsp.buf_request_sync(0, 'textDocument/hover', { textDocument = { uri = uri }, position = { line = 98, character = 5 } }, 5000)
for _, response in pairs(hovers or {}) do
  if response.result then result.hover = response.result.contents.value end
end
local lenses = vim.lsp.buf_request_sync(0, 'textDocument/codeLens', { textDocument = { uri = uri } }, 5000)
for _, response in pairs(lenses or {}) do
  for _, lens in ipairs(response.result or {}) do table.insert(result.lenses, lens.command.title) end
end

local file = io.open(os.getenv('BSL_RESULT'), 'w')
file:write(vim.fn.json_encode(result))
file:close()
vim.lsp.stop_client(client_id)
vim.cmd('qall!')
