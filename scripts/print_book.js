// Turns the single-page build of the book into the page that scripts/book.py prints to PDF.
// prepare(meta): waits for MathJax and the images, drops the exercise solutions and written
//   answers, unfolds what the website folds (except code it hides), adds the title page and the
//   table of contents, and reports problems (raw TeX, MathJax errors, missing images).
// number(pages): writes the page numbers (read from a first print) into the table of contents.
({
  prepare: async (meta) => {
    const problems = [];
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    if (document.querySelector('.math')) {
      const ready = () => window.MathJax && MathJax.startup && MathJax.startup.promise;
      for (let i = 0; i < 600 && !ready(); i++) await sleep(50);
      if (ready()) await MathJax.startup.promise;
      else problems.push('MathJax did not load');
    }
    await Promise.all([...document.images].map((img) => img.decode().catch(() => null)));

    const article = document.querySelector('article.bd-article') || document.body;
    const headingText = (h) => [...h.childNodes].filter((n) => !(n.classList && n.classList.contains('headerlink')))
      .map((n) => n.textContent).join('').replace(/#\s*$/, '').trim();
    const headingOf = (section) => [...section.children].find((c) => /^H[1-6]$/.test(c.tagName));

    // Exercise solutions and written answers stay in the notebooks (as in the student edition).
    const removed = {solutions: 0, answers: 0};
    for (const section of article.querySelectorAll('section')) {
      const h = headingOf(section);
      if (!h || !/^(\d+(\.\d+)*\.?\s*)?Exercises$/.test(headingText(h))) continue;
      for (const cell of section.querySelectorAll('.cell.tag_hide-input, .cell.tag_hide-output')) {
        cell.remove();
        removed.solutions += 1;
      }
    }
    for (const answer of article.querySelectorAll('details.answer')) {
      answer.remove();
      removed.answers += 1;
    }
    // Code the website folds (setup, plotting) is left out; folded outputs are shown.
    for (const folded of article.querySelectorAll('.cell details.above-input')) folded.remove();
    for (const folded of article.querySelectorAll('.cell details.below-input')) {
      folded.open = true;
      folded.querySelectorAll(':scope > summary').forEach((s) => s.remove());
    }
    for (const details of article.querySelectorAll('details')) details.open = true;

    // Chapters: the sections whose heading is numbered ("3. Sequence shapes").
    const chapters = [];
    const toc = [];
    let counter = 0;
    for (const section of article.querySelectorAll('section')) {
      const h = headingOf(section);
      if (!h) continue;
      const text = headingText(h);
      const level = Number(h.tagName[1]);
      const isBookTitle = level === 1;
      const isChapter = level === 2 && /^\d+\.\s/.test(text);
      const isSection = level === 3 && /^\d+\.\d+\.\s/.test(text);
      if (!(isBookTitle || isChapter || isSection)) continue;
      const id = `pdf-${++counter}`;
      h.id = id;
      if (isChapter) {
        section.classList.add('pdf-chapter');
        // The anchor Sphinx puts before each document moves inside it: alone, it can be
        // pushed to a page of its own by the chapter's page break.
        const anchor = section.previousElementSibling;
        if (anchor && anchor.tagName === 'SPAN' && anchor.id.startsWith('document-')) section.prepend(anchor);
        chapters.push(text);
      }
      toc.push({id, text: isBookTitle ? 'About this book' : text, level: isSection ? 2 : 1});
    }

    // Title page, then the table of contents (page numbers come in number()).
    const front = document.createElement('div');
    front.className = 'pdf-front';
    const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;'}[c]));
    front.innerHTML = `
      <div class="pdf-title-page">
        <p class="pdf-title">${esc(meta.title)}</p>
        <p class="pdf-author">${esc(meta.author)}</p>
        <p class="pdf-edition">Version ${esc(meta.version)}, printed ${esc(meta.date)}</p>
        <p class="pdf-url">${esc(meta.url)}</p>
        <p class="pdf-note">Every number, table and figure here was produced by the code shown with it,
          when this edition was built. The exercise solutions and written answers are left out;
          they are in the chapters' notebooks.</p>
      </div>
      <nav class="pdf-toc"><p class="pdf-toc-title">Contents</p><ul>
        ${toc.map((e) => `<li class="pdf-toc-${e.level}"><a href="#${e.id}">${esc(e.text)}</a>` +
                         `<span class="pdf-page" data-target="${e.id}"></span></li>`).join('')}
      </ul></nav>`;
    article.prepend(front);

    const style = document.createElement('style');
    style.textContent = `
      @page { size: A4; }
      html { font-size: 12.5px; }
      .bd-header, .bd-sidebar-primary, .bd-sidebar-secondary, .header-article, .prev-next-area,
      .bd-footer, .bd-footer-article, .bd-footer-content, footer, #jb-print-docs-body, #jb-print-toc,
      .toctree-wrapper > p.caption, .toctree-wrapper > ul, a.headerlink, .skip-link, #pst-back-to-top, .search-button-field,
      .bd-header-announcement { display: none !important; }
      .bd-main .bd-content { margin-left: 0 !important; }
      html, body, .bd-container, .bd-container__inner, .bd-main, .bd-content, .bd-article-container,
      .bd-article { display: block !important; height: auto !important; overflow: visible !important; }
      .bd-article h1:first-of-type { display: block !important; }
      .bd-container, .bd-container__inner, .bd-page-width, .bd-main, .bd-content, .bd-article-container,
      .bd-article { max-width: none !important; width: auto !important; padding: 0 !important; margin: 0 !important; }
      .pdf-title-page { break-after: page; padding-top: 30vh; text-align: center; }
      .pdf-title { font-size: 2.2rem; font-weight: 700; margin-bottom: 1.5rem; }
      .pdf-author, .pdf-edition, .pdf-url { font-size: 1.2rem; margin: 0.3rem 0; }
      .pdf-note { margin: 4rem auto 0 auto; max-width: 32rem; font-size: 1rem; color: #444; }
      .pdf-toc { break-after: page; }
      .pdf-toc-title { font-size: 1.8rem; font-weight: 700; margin-bottom: 1rem; }
      .pdf-toc ul { list-style: none; padding: 0; }
      .pdf-toc li { display: flex; align-items: baseline; margin: 0.15rem 0; }
      .pdf-toc li a { color: inherit; text-decoration: none; }
      .pdf-toc li::after { content: ""; order: 1; flex: 1; border-bottom: 1px dotted #999; margin: 0 0.4rem; }
      .pdf-toc li .pdf-page { order: 2; min-width: 2em; text-align: right; }
      .pdf-toc-1 { font-weight: 600; margin-top: 0.6rem !important; }
      .pdf-toc-2 { padding-left: 1.8rem; font-size: 0.95em; }
      section.pdf-chapter { break-before: page; }
      h1, h2, h3, h4 { break-after: avoid; }
      figure, img, table, div.math, .cell_output, .cell_input, pre, mjx-container[display="true"] {
        break-inside: avoid;
      }
      img { max-height: 235mm; object-fit: contain; }
      pre { white-space: pre-wrap !important; word-break: break-word; font-size: 0.85em; }`;
    document.head.appendChild(style);

    // Wide equations and tables shrink to the page: a printed page cannot scroll sideways.
    // (The page is laid out at the printed width: book.py sets the viewport to it.)
    const fit = (box, content, room) => {
      const width = content.getBoundingClientRect().width;
      if (width > room + 1) box.style.zoom = (room / width).toFixed(3);
      return width > room + 1;
    };
    let shrunk = 0;
    for (const div of article.querySelectorAll('div.math')) {
      const math = div.querySelector('mjx-container > mjx-math');
      const eqno = div.querySelector('.eqno');
      if (math) shrunk += fit(div.querySelector('mjx-container'), math, div.clientWidth - (eqno ? eqno.offsetWidth + 12 : 0));
    }
    for (const table of article.querySelectorAll('table')) shrunk += fit(table, table, table.parentElement.clientWidth);

    // What would show raw: TeX MathJax did not typeset, glue roles left unresolved, broken images.
    const skip = 'pre, code, script, style, textarea, mjx-container, .highlight';
    const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (node.parentElement.closest(skip)) continue;
      const m = node.textContent.match(/\$|\\\(|\\\[|\\begin\{|\\frac|\{glue/);
      if (m) problems.push(`raw source in the text: ${JSON.stringify(node.textContent.trim().slice(0, 100))}`);
    }
    const merrors = article.querySelectorAll('mjx-merror').length;
    if (merrors) problems.push(`${merrors} MathJax TeX errors`);
    const untypeset = [...article.querySelectorAll('.math')].filter((m) => !m.querySelector('mjx-container')).length;
    if (untypeset) problems.push(`${untypeset} equations not typeset`);
    const images = [...article.querySelectorAll('img')];
    for (const img of images) if (!(img.complete && img.naturalWidth > 0)) problems.push(`image did not load: ${img.src}`);
    if (!chapters.length) problems.push('no numbered chapter found on the page');
    return {problems, chapters, removed, shrunk, images: images.length,
            equations: article.querySelectorAll('mjx-container').length, toc: toc.length};
  },

  number: (pages) => {
    for (const span of document.querySelectorAll('.pdf-page[data-target]')) {
      span.textContent = pages[span.dataset.target] ?? '';
    }
  },
})
