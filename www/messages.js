// The page's messages: the error box (#error, role="alert") and the notice
// line under the model (#notice: what the page did with memory or the
// engine, not an error).

const $ = (id) => document.getElementById(id);

export function createMessages() {
  const box = $("error");
  const text = $("error-text");
  const notice = $("notice");

  const messages = {
    /** Show `message` in the error box (replacing what it said). */
    error(message) {
      text.textContent = message;
      box.hidden = false;
    },
    /** Add to what the error box says. */
    append(more) {
      text.textContent += more;
    },
    clear() {
      box.hidden = true;
      text.textContent = "";
    },
    /** A line about what the page did with memory or the engine; "" hides it. */
    notice(line) {
      notice.textContent = line;
      notice.hidden = !line;
    },
  };
  $("error-close").addEventListener("click", messages.clear);
  return messages;
}
