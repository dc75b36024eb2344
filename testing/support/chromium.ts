/**
 * Headless Chromium for end-to-end tests of the report and the live page:
 * Debian's `chromium` driven by playwright-core, in a throwaway profile, with
 * no network of its own (no sync, updates or QUIC). Tests are ignored, with
 * one line saying how to install it, where it is missing. Test support of
 * this repository (not published).
 *
 * @module
 */
import { existsSync } from "node:fs";
import { type BrowserContext, chromium } from "playwright-core";
import { tempDir } from "./temp_files.ts";

/** Debian's Chromium. */
export const CHROMIUM = "/usr/bin/chromium";

/** Whether {@link CHROMIUM} is installed. */
export const HAVE_CHROMIUM: boolean = existsSync(CHROMIUM);

/**
 * Says on stderr, once per test file, that `what` is ignored because
 * Chromium is missing; does nothing where it is installed.
 */
export function warnIfNoChromium(what: string): void {
  if (HAVE_CHROMIUM) return;
  console.warn(
    `SKIPPED: chromium not installed (${CHROMIUM} is missing); ${what} is ignored. Install it with: apt-get install -y chromium`,
  );
}

/** Starts headless Chromium in a new temporary profile, 1280 x 900. */
export function launchChromium(): Promise<BrowserContext> {
  return chromium.launchPersistentContext(tempDir("irmae-chromium-profile-"), {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: { width: 1280, height: 900 },
    timeout: 60_000,
  });
}
