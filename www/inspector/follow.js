// "Follow one number": how one element of a walkthrough vector was computed
// from its inputs (Model.follow), drawn into the walkthrough's #walk-follow.

/** Draw `f` (Model.follow's answer) for element of `stage` at `pos`. */
export function renderFollow(el, f) {
  const p = document.createElement("p");
  p.textContent = JSON.stringify(f);
  el.replaceChildren(p);
}
