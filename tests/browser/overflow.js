// Evaluated by tests/browser/test_layout.py in each page: returns what overflows.
// strictTables: at laptop width a table must fit its card without sideways scrolling.
(strictTables) => {
  const problems = [];
  const root = document.documentElement;
  const describe = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
    + (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\s+/).join('.') : '');
  if (root.scrollWidth > root.clientWidth + 1) {
    problems.push(`the page scrolls sideways (${root.scrollWidth} > ${root.clientWidth})`);
  }
  for (const box of document.querySelectorAll('main .card, main .page-header, main .tabs, .topbar')) {
    if (box.scrollWidth > box.clientWidth + 1) {
      problems.push(`${describe(box)} overflows (${box.scrollWidth} > ${box.clientWidth})`);
    }
  }
  for (const table of document.querySelectorAll('main table')) {
    const scroller = table.closest('.table-wrap') || (getComputedStyle(table).overflowX === 'auto' ? table : null);
    const card = table.closest('.card');
    if (!scroller && card && table.getBoundingClientRect().right > card.getBoundingClientRect().right + 1) {
      problems.push(`${describe(table)} sticks out of its card and cannot scroll`);
    }
    if (strictTables && scroller && scroller.scrollWidth > scroller.clientWidth + 1) {
      problems.push(`${describe(table)} needs sideways scrolling at laptop width (${scroller.scrollWidth} > ${scroller.clientWidth})`);
    }
  }
  return problems;
}
