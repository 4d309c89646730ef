/**
 * The only way the page makes elements: text always goes in as text nodes
 * (never innerHTML), attributes come from the code, not from the bus. Every
 * string from the bus (device ids, event names, payloads, reasons) is
 * untrusted: this is what makes an event named `<img src=x onerror=…>` show
 * as those characters and run nothing.
 */
type Child = Node | string | number | null | undefined | false;

export interface Props {
  class?: string;
  title?: string;
  href?: string;
  type?: string;
  placeholder?: string;
  value?: string;
  id?: string;
  for?: string;
  role?: string;
  list?: string;
  spellcheck?: boolean;
  disabled?: boolean;
  data?: Record<string, string>;
  onclick?: (e: MouseEvent) => void;
  onpointerdown?: (e: PointerEvent) => void;
  oninput?: (e: Event) => void;
  onchange?: (e: Event) => void;
  onkeydown?: (e: KeyboardEvent) => void;
}

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (props.class !== undefined) el.className = props.class;
  if (props.title !== undefined) el.title = props.title;
  if (props.href !== undefined) (el as unknown as HTMLAnchorElement).href = props.href;
  if (props.id !== undefined) el.id = props.id;
  if (props.role !== undefined) el.setAttribute('role', props.role);
  for (const a of ['type', 'placeholder', 'value', 'for', 'list'] as const) if (props[a] !== undefined) el.setAttribute(a, props[a]);
  if (props.spellcheck !== undefined) el.spellcheck = props.spellcheck;
  if (props.disabled !== undefined) (el as unknown as HTMLInputElement).disabled = props.disabled;
  if (props.data) for (const [k, v] of Object.entries(props.data)) el.dataset[k] = v;
  const target: HTMLElement = el;
  if (props.onclick) target.addEventListener('click', props.onclick);
  if (props.onpointerdown) target.addEventListener('pointerdown', props.onpointerdown);
  if (props.oninput) target.addEventListener('input', props.oninput);
  if (props.onchange) target.addEventListener('change', props.onchange);
  if (props.onkeydown) target.addEventListener('keydown', props.onkeydown);
  append(el, children);
  return el;
}

export function append(el: Node, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
}

/** Sets an element's text when it changed (no layout work otherwise). */
export function setText(el: HTMLElement, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

/** Sets a class name or a title when it changed: a write of the same value still costs a style recalculation. */
export function setClass(el: HTMLElement, cls: string): void {
  if (el.className !== cls) el.className = cls;
}

export function setTitle(el: HTMLElement, title: string): void {
  if (el.title !== title) el.title = title;
}

export function clear(el: Node): void {
  while (el.firstChild) el.removeChild(el.firstChild);
}
