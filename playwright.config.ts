import { defineConfig } from '@playwright/test';
import type { Engine } from './e2e/support/engines/driver.js';

// Debian's Chromium: Playwright's own build lacks H.264/AAC (docs/studio.md).
const executablePath = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

// The walk-throughs every engine must pass; the other specs are Chromium's (Playwright's page).
const everyEngine = /engines\.spec\.ts$/;

export default defineConfig<{ engine: Engine }>({
  testDir: './e2e',
  globalSetup: './e2e/support/global-setup.ts',
  timeout: 120_000,
  // Two cores: one browser encoding 720p at a time.
  workers: 1,
  fullyParallel: false,
  reporter: [['list']],
  use: {
    launchOptions: {
      executablePath,
      args: [
        '--no-sandbox',
        '--use-fake-device-for-media-stream',
        '--use-fake-ui-for-media-stream',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-quic',
      ],
    },
    trace: 'off',
  },
  // `npx playwright test --project firefox` runs one engine (docs/testing.md).
  projects: [
    { name: 'chromium', use: { engine: 'chromium' } },
    // Firefox ESR over WebDriver BiDi, fake devices by prefs (e2e/support/engines/firefox.ts).
    { name: 'firefox', testMatch: everyEngine, use: { engine: 'firefox' } },
    // WebKitGTK over WebDriver, mock capture devices, on Xvfb (e2e/support/engines/webkit.ts).
    { name: 'webkit', testMatch: everyEngine, use: { engine: 'webkit' } },
  ],
});
