import type { Settings } from '../config/settings.js';
import type { Clock } from '../runtime/clock.js';
import type { Logger } from '../runtime/log.js';
import { Camera } from './camera.js';
import { parseCameraSetting, resolveCamera, systemProbe } from './detect.js';
import type { CameraProbe } from './detect.js';

/** The camera part of the settings, as `frontdoor run` and the demo hand it over. */
export type CameraSettings = Pick<Settings, 'camera' | 'cameraWidth' | 'cameraHeight' | 'cameraFps' | 'cameraQuality' | 'cameraIdle' | 'cameraAlwaysOn'>;

/** A 4096x4096 frame at quality 100 stays under this; anything bigger is a broken stream. */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024;

/**
 * Picks the source the setting asks for and builds the node's Camera; undefined when the node
 * has none (`none`, or `auto` found nothing), so it does not offer pictures at all.
 */
export async function cameraFromSettings(
  s: CameraSettings,
  components: { clock: Clock; logger: Logger },
  opts: { probe?: CameraProbe; signal?: AbortSignal } = {},
): Promise<Camera | undefined> {
  const log = components.logger;
  const format = { width: s.cameraWidth, height: s.cameraHeight, fps: s.cameraFps, quality: s.cameraQuality };
  const choice = await resolveCamera(parseCameraSetting(s.camera), {
    format,
    maxFrameBytes: MAX_FRAME_BYTES,
    probe: opts.probe ?? systemProbe(),
    ...(opts.signal ? { signal: opts.signal } : {}),
    onFallback: (from, to, reason) => log.warn('camera command failed before its first picture; trying another', { failed: from.what, next: to.what, reason }),
  });
  if (choice.source === undefined && !choice.announced) {
    log.info('no camera', { why: choice.why });
    return undefined;
  }
  if (choice.source === undefined) log.warn('camera asked for but not found', { why: choice.why });
  else log.info('camera', { source: choice.source.label, why: choice.why, size: `${format.width}x${format.height}`, fps: format.fps });
  return new Camera(components, {
    source: choice.source,
    ...(choice.source === undefined ? { unavailableReason: choice.why } : {}),
    width: format.width,
    height: format.height,
    fps: format.fps,
    idleMs: s.cameraIdle,
    alwaysOn: s.cameraAlwaysOn,
  });
}
