// Which controller serves an Ingress, by ingress-nginx's class rules (internal/ingress/controller/store,
// GetIngressClass): spec.ingressClassName names an IngressClass whose spec.controller must be the
// controller's --controller-class (or, with --ingress-class-by-name, its name is --ingress-class); else
// the legacy kubernetes.io/ingress.class annotation must equal --ingress-class; else only a controller
// with --watch-ingress-without-class takes it. The controller and the doctor share this rule. Pure.

export const LEGACY_CLASS_ANNOTATION = 'kubernetes.io/ingress.class';

/** The controller flags that decide which Ingresses it serves. */
export interface ClassOptions {
  ingressClass: string;
  controllerClass: string;
  watchIngressWithoutClass: boolean;
  ingressClassByName: boolean;
  /**
   * The controller may not list IngressClasses (RBAC): as ingress-nginx then (IgnoreIngressClass),
   * spec.ingressClassName is not read and the annotation and --watch-ingress-without-class decide.
   */
  ignoreIngressClass?: boolean;
}

/** An object as the API (or a manifest file) has it. */
type RawObject = Readonly<Record<string, unknown>>;

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const rec = (v: unknown): Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};

/** ingress-nginx's rule: does the controller with these flags serve the Ingress? */
export function isOurIngress(ing: RawObject, classes: readonly RawObject[], o: ClassOptions): boolean {
  const className = o.ignoreIngressClass === true ? null : str(rec(ing.spec).ingressClassName);
  if (className !== null) {
    const cls = classes.find((c) => rec(c.metadata).name === className);
    if (cls && str(rec(cls.spec).controller) === o.controllerClass) return true;
    return o.ingressClassByName && className === o.ingressClass;
  }
  const legacy = rec(rec(ing.metadata).annotations)[LEGACY_CLASS_ANNOTATION];
  // Present, even empty, the annotation decides: ingress-nginx ignores an Ingress whose annotation is
  // not its class, and does not fall through to --watch-ingress-without-class.
  if (typeof legacy === 'string') return legacy === o.ingressClass;
  return o.watchIngressWithoutClass;
}

export const DEFAULT_CLASS_ANNOTATION = 'ingressclass.kubernetes.io/is-default-class';

/** An IngressClass as the default-class rule reads it. */
export interface ClassCandidate {
  name: string;
  isDefault: boolean;
  /** metadata.creationTimestamp as written; null in a manifest not yet applied. */
  creationTimestamp: string | null;
}

/** The class an Ingress without one is given, and how sure that is. */
export interface DefaultClass {
  name: string;
  /** Every class marked default, the chosen one first. */
  marked: string[];
  /** False when several are marked and one has no creationTimestamp: the order of creation decides. */
  certain: boolean;
}

/**
 * The API server's DefaultIngressClass admission: an Ingress created without spec.ingressClassName
 * and without the legacy annotation gets the class marked default; when several are, the newest
 * (creationTimestamp), equal times by name. Null when none is marked.
 */
export function defaultIngressClass(classes: readonly ClassCandidate[]): DefaultClass | null {
  const marked = classes.filter((c) => c.isDefault);
  if (marked.length === 0) return null;
  const created = (c: ClassCandidate): number => {
    const ms = c.creationTimestamp === null ? Number.NaN : Date.parse(c.creationTimestamp);
    return Number.isNaN(ms) ? Number.NEGATIVE_INFINITY : ms;
  };
  const ordered = [...marked].sort(
    (a, b) => created(b) - created(a) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  );
  const certain = marked.length === 1 || marked.every((c) => Number.isFinite(created(c)));
  return { name: ordered[0]!.name, marked: ordered.map((c) => c.name), certain };
}

/** A raw IngressClass object as a candidate. */
export function classCandidate(cls: RawObject): ClassCandidate {
  const metadata = rec(cls.metadata);
  return {
    name: str(metadata.name) ?? '',
    isDefault: rec(metadata.annotations)[DEFAULT_CLASS_ANNOTATION] === 'true',
    creationTimestamp: str(metadata.creationTimestamp),
  };
}
