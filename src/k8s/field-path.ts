// Field paths as people read them in error messages: `spec.rules[0].http.paths[1].path`,
// `metadata.annotations["nginx.ingress.kubernetes.io/app-root"]`.

export type PathSegment = string | number;

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function formatFieldPath(segments: readonly PathSegment[]): string {
  let out = '';
  for (const segment of segments) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (IDENTIFIER.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

/** The field path of one annotation, e.g. `metadata.annotations["kubernetes.io/ingress.class"]`. */
export function annotationField(key: string): string {
  return formatFieldPath(['metadata', 'annotations', key]);
}
