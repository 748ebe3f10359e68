"""The UI's CSS and the small scripts of its HTML panels (opening a cited span)."""

from __future__ import annotations

# Gradio 6 ships only a 55-glyph subset of Source Sans Pro SemiBold, so bold text would mix
# fonts; bold headings use the system sans-serif (HEADING_FONT below) instead.
HEADING_FONT = "ui-sans-serif, system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
CSS_COMMON = """
mark { background: #fde68a; color: #111; padding: 0 2px; border-radius: 3px; }
mark .in-chat { font-style: italic; color: #555; }
.empty { opacity: 0.7; font-size: 0.92em; padding: 6px 2px; }
"""

CSS_SOURCES = """
.src-list { display: flex; flex-direction: column; gap: 10px; }
.src-heading, .src-maybe { margin: 2px 0; font-size: 0.95em; font-family: HEADING_FONT; }
.src-card { border: 1px solid var(--border-color-primary); border-radius: 10px;
  padding: 10px 12px; background: var(--background-fill-secondary); }
.src-head { font-weight: 600; line-height: 1.3; font-family: HEADING_FONT; }
.src-n { color: var(--color-accent); margin-right: 2px; }
.src-meta { font-size: 0.85em; opacity: 0.75; margin: 3px 0 6px; }
.src-file { font-family: var(--font-mono); }
.src-context { margin: 0 0 8px; padding: 0 0 0 10px; border-left: 3px solid
  var(--color-accent-soft); font-size: 0.92em; line-height: 1.45; white-space: normal; }
.src-open { font-size: 0.85em; padding: 3px 10px; border-radius: 6px; cursor: pointer;
  border: 1px solid var(--border-color-primary); background: var(--background-fill-primary);
  font-family: HEADING_FONT; }
.src-open:hover { border-color: var(--color-accent); }
.src-refused { font-weight: 600; padding: 8px 10px; border-radius: 8px;
  background: #fff4e5; color: #7a4b00; font-family: HEADING_FONT; }
"""

CSS_VIEWER = """
.doc-head { margin-bottom: 8px; }
.doc-title { font-weight: 700; font-size: 1.05em; font-family: HEADING_FONT; }
.doc-meta { font-size: 0.85em; opacity: 0.75; }
.doc-file { font-family: var(--font-mono); }
.doc-text { position: relative; white-space: pre-wrap; line-height: 1.5; max-height: 62vh;
  overflow-y: auto; padding: 10px 12px; border: 1px solid var(--border-color-primary);
  border-radius: 10px; background: var(--background-fill-secondary); font-size: 0.93em; }
.page-view { margin: 0 0 12px 0; }
.page-head { font-weight: 600; font-size: 0.9em; margin-bottom: 4px; }
.page-note { font-size: 0.85em; opacity: 0.8; margin-bottom: 4px; }
.page-img { position: relative; border: 1px solid var(--border-color-primary); max-width: 640px; }
.page-img img { display: block; width: 100%; height: auto; }
.page-hl { position: absolute; background: rgba(255, 200, 0, 0.38);
  outline: 2px solid rgba(230, 120, 0, 0.8); border-radius: 2px; pointer-events: none; }
"""

CSS_CORPUS = """
.corpus-sum { font-size: 0.9em; opacity: 0.8; margin-bottom: 6px; }
table.corpus { width: 100%; border-collapse: collapse; font-size: 0.9em; }
table.corpus th, table.corpus td { text-align: left; padding: 5px 6px; vertical-align: top;
  border-bottom: 1px solid var(--border-color-primary); }
table.corpus td.num { text-align: right; }
table.corpus td.file { font-family: var(--font-mono); font-size: 0.9em; word-break: break-all; }
.doc-link { all: unset; cursor: pointer; color: var(--link-text-color, var(--color-accent)); }
.doc-link:hover { text-decoration: underline; }
"""

CSS_STATUS = """
.report { list-style: none; padding: 0; margin: 4px 0; font-size: 0.92em; }
.report li { padding: 3px 0; }
.report b { font-family: HEADING_FONT; }
.report li.bad, .msg.error { color: #b42318; }
.msg { font-size: 0.92em; padding: 4px 0; }
.msg.ok { color: #067647; }
"""

CSS_HEADER = """
.brand { display: flex; align-items: baseline; gap: 12px; flex-wrap: wrap; }
.brand h1 { margin: 0; font-size: 1.6em; font-family: HEADING_FONT; }
.brand .tag { opacity: 0.75; }
"""


def css(rules: str) -> str:
    return (CSS_COMMON + rules).replace("HEADING_FONT", HEADING_FONT)


# Clicking any [data-doc] button in the panel asks the server to open that document.
JS_OPEN = """
const openSpan = (doc, start, end) =>
  trigger('open_doc', { doc_id: doc, start: Number(start), end: Number(end) });
element.addEventListener('click', (event) => {
  const button = event.target.closest('[data-doc]');
  if (!button || !element.contains(button)) return;
  openSpan(button.dataset.doc, button.dataset.start, button.dataset.end);
});
"""

# The sources panel also opens the span of an [n] marker clicked in the chat (its link
# is #cite/<doc_id>/<start>/<end>); one listener for the page, in the capture phase so
# the link is never followed.
JS_SOURCES = (
    JS_OPEN
    + """
if (!window.__sourcierCitations) {
  window.__sourcierCitations = true;
  document.addEventListener('click', (event) => {
    const link = event.target.closest && event.target.closest('#chat a[href*="#cite/"]');
    if (!link) return;
    event.preventDefault();
    event.stopPropagation();
    openSpan(...link.getAttribute('href').split('#cite/')[1].split('/'));
  }, true);
}
"""
)

# Scroll the viewer's own box so the highlighted span sits in its upper third.
JS_SCROLL_BODY = """
  const mark = root.querySelector('mark#cite');
  const box = root.querySelector('.doc-text');
  if (box) box.scrollTop = 0;
  if (mark && box) box.scrollTop = Math.max(0, mark.offsetTop - box.clientHeight / 3);
"""
JS_VIEWER = (
    "const scroll = () => { const root = element;"
    + JS_SCROLL_BODY
    + "};\nwatch('value', () => { scroll(); setTimeout(scroll, 150); });\nscroll();"
)
JS_AFTER_OPEN = (
    "() => { setTimeout(() => { const root = document.querySelector('#doc-viewer');"
    " if (!root) return;" + JS_SCROLL_BODY + "}, 200); }"
)


def upload_guard_js(messages: dict[str, str], extensions: list[str], max_bytes: int) -> str:
    """The upload box's own check, before a file is sent: a file of another type or over
    the size limit is held back and the reason shown in French under the box (Gradio's
    own check would show an English toast and leave the box stuck on "Erreur").

    ``messages`` are the core's French reasons (``uploads.guard_messages``).
    """
    import json

    return (
        f"const MESSAGES = {json.dumps(messages)}, TYPES = {json.dumps(extensions)}, "
        f"MAX = {int(max_bytes)};"
        + """
const size = (n) => n >= 1048576
  ? `${(Math.round(n / 104857.6) / 10).toString().replace('.', ',')}\u00a0Mo`
  : `${Math.round(n / 1024)}\u00a0Ko`;
const reason = (file) => {
  const dot = file.name.lastIndexOf('.');
  const ext = dot > 0 ? file.name.slice(dot).toLowerCase() : '';
  if (!ext) return MESSAGES.no_extension;
  if (!TYPES.includes(ext)) return MESSAGES.unsupported_type.replace('§EXT§', ext);
  if (file.size > MAX) return MESSAGES.too_large.replace('§SIZE§', size(file.size));
  if (file.size === 0) return MESSAGES.empty;
  return null;
};
const escapeText = (s) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const hold = (files, event) => {
  const bad = Array.from(files || []).map((f) => [f.name, reason(f)]).filter(([, r]) => r);
  if (!bad.length) return;
  event.preventDefault();
  event.stopImmediatePropagation();
  if (event.target && 'value' in event.target) event.target.value = '';
  element.innerHTML = '<ul class="report">' + bad.map(([name, r]) =>
    `<li class="bad">✗ <b>${escapeText(name)}</b> : ${escapeText(r)}</li>`).join('') +
    '</ul><div class="msg error">Aucun fichier n’a été envoyé.</div>';
};
if (!window.__sourcierUploadGuard) {
  window.__sourcierUploadGuard = true;
  document.addEventListener('change', (event) => {
    const input = event.target;
    if (input instanceof HTMLInputElement && input.type === 'file' && input.closest('#upload'))
      hold(input.files, event);
  }, true);
  document.addEventListener('drop', (event) => {
    if (event.target.closest && event.target.closest('#upload'))
      hold(event.dataTransfer && event.dataTransfer.files, event);
  }, true);
}
"""
    )
