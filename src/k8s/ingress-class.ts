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
}

/** An object as the API (or a manifest file) has it. */
type RawObject = Readonly<Record<string, unknown>>;

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const rec = (v: unknown): Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};

/** ingress-nginx's rule: does the controller with these flags serve the Ingress? */
export function isOurIngress(ing: RawObject, classes: readonly RawObject[], o: ClassOptions): boolean {
  const className = str(rec(ing.spec).ingressClassName);
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
