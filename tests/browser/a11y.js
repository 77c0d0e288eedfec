// Evaluated by tests/browser/test_layout.py in each page: what a screen reader would miss.
() => {
  const problems = [];
  const visible = (el) => el.getClientRects().length > 0 || el.closest('details:not([open])');
  for (const el of document.querySelectorAll('input, select, textarea, button, summary')) {
    if (el.type === 'hidden' || !visible(el)) continue;
    const labels = el.labels ? [...el.labels].map((l) => l.textContent.trim()).join(' ') : '';
    const name = labels || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')
      || (['BUTTON', 'SUMMARY'].includes(el.tagName) ? el.textContent.trim() : '');
    if (!name) problems.push(`unlabelled ${el.tagName.toLowerCase()} name="${el.name || ''}"`);
  }
  for (const img of document.querySelectorAll('img:not([alt])')) {
    problems.push(`image without alt: ${img.src}`);
  }
  const h1 = document.querySelectorAll('h1').length;
  if (h1 !== 1) problems.push(`${h1} h1 headings`);
  if (!document.querySelector('main#main')) problems.push('no main landmark for the skip link');
  return problems;
}
