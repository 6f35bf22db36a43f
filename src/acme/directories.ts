/** The CAs a setting may name by nickname (acme-client's list, without loading acme-client). */
export const DIRECTORIES: Readonly<Record<string, string>> = {
  letsencrypt: 'https://acme-v02.api.letsencrypt.org/directory',
  'letsencrypt-staging': 'https://acme-staging-v02.api.letsencrypt.org/directory',
};

/** The directory URL a setting names: a known CA's nickname, or the URL itself. */
export function directoryUrl(setting: string): string {
  return Object.hasOwn(DIRECTORIES, setting) ? (DIRECTORIES[setting] as string) : setting;
}
