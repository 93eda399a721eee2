import type { Page } from '@playwright/test';

/**
 * Mean and spread of the luma of the picture the page's `<video>` shows now, drawn through a
 * canvas at 320×180: the browser's own decoder output, not what the page says about it.
 */
export async function picture(page: Page): Promise<{ mean: number; spread: number; width: number }> {
  return page.evaluate(() => {
    const video = document.querySelector('video')!;
    const canvas = document.createElement('canvas');
    canvas.width = 320;
    canvas.height = 180;
    const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
    ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
    const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    let sum = 0;
    let sq = 0;
    const n = px.length / 4;
    for (let i = 0; i < px.length; i += 4) {
      const y = 0.2126 * px[i]! + 0.7152 * px[i + 1]! + 0.0722 * px[i + 2]!;
      sum += y;
      sq += y * y;
    }
    const mean = sum / n;
    return { mean, spread: Math.sqrt(sq / n - mean * mean), width: video.videoWidth };
  });
}
