// KaTeX as Material for MkDocs documents it: render the math that pymdownx.arithmatex marks
// (generic mode: \( … \) inline, \[ … \] display) on every page, including instant loads.
document$.subscribe(({ body }) => {
  renderMathInElement(body, {
    delimiters: [
      { left: "$$", right: "$$", display: true },
      { left: "$", right: "$", display: false },
      { left: "\\(", right: "\\)", display: false },
      { left: "\\[", right: "\\]", display: true }
    ],
  })
})
