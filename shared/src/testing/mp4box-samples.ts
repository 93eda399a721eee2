import { createFile, MP4BoxBuffer, type ISOFile, type Movie, type Sample } from 'mp4box';

export interface Mp4boxRead {
  file: ISOFile;
  info: Movie;
  /** Every sample of every track, by track id, in decode order. */
  samples: Map<number, Sample[]>;
}

/**
 * Reads an MP4 (plain or fragmented) with mp4box, the independent parser our writers are judged
 * by, and collects every sample of every track. A parse error, or no moov, throws.
 */
export function readWithMp4box(bytes: Uint8Array): Mp4boxRead {
  const file = createFile(true);
  let info: Movie | undefined;
  const samples = new Map<number, Sample[]>();
  file.onError = (module: string, message: string) => {
    throw new Error(`mp4box ${module}: ${message}`);
  };
  file.onReady = (movie: Movie) => {
    info = movie;
    for (const t of movie.tracks) {
      samples.set(t.id, []);
      file.setExtractionOptions(t.id, undefined, { nbSamples: 1_000_000 });
    }
    file.start();
  };
  file.onSamples = (id: number, _user: unknown, got: Sample[]) => {
    samples.get(id)!.push(...got);
  };
  file.appendBuffer(MP4BoxBuffer.fromArrayBuffer(bytes.slice().buffer, 0));
  file.flush();
  if (info === undefined) throw new Error('mp4box found no moov');
  return { file, info, samples };
}
