// The status line under the submit button (a polite live region): the one place that says what
// the page is doing. The entry module points it at its element; anything may report to it.

let line = null;

/** Write status messages into `element` from now on. */
export function useStatusLine(element) {
  line = element;
}

export function setStatus(text) {
  if (line) line.textContent = text;
}
