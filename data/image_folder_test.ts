import assert from "node:assert/strict";
import { encode as encodePng } from "fast-png";
import jpeg from "jpeg-js";
import {
  createImageFolder,
  decodeImage,
  imageFolderPlugin,
  listImageFiles,
} from "./image_folder.ts";
import { centerCrop, resizeBilinear } from "./resize.ts";
import { tempDir } from "../testing/support/temp_files.ts";

/** An RGB PNG whose pixel (r, c) is `f(r, c)`, bytes. */
function png(
  height: number,
  width: number,
  f: (r: number, c: number) => [number, number, number],
): Uint8Array {
  const data = new Uint8Array(height * width * 3);
  for (let r = 0; r < height; r++) {
    for (let c = 0; c < width; c++) data.set(f(r, c), (r * width + c) * 3);
  }
  return encodePng({ width, height, data, channels: 3, depth: 8 });
}

/** Values as float32, for exact comparisons with decoded data. */
const f32 = (values: number[]) => values.map(Math.fround);

/** Runs `fn` with a fresh temporary folder, removed afterwards. */
async function withDir(fn: (dir: string) => Promise<void> | void) {
  const dir = tempDir("image_folder_test_");
  try {
    await fn(dir);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test("decodeImage() turns PNG and JPEG into floats in [0, 1]", async (t) => {
  await t.step("RGB, RGBA and grey PNGs", () => {
    const rgba = encodePng({
      width: 1,
      height: 1,
      data: new Uint8Array([51, 102, 255, 0]),
      channels: 4,
    });
    assert.deepEqual([...decodeImage(rgba).data], f32([0.2, 0.4, 1]));
    const grey = encodePng({
      width: 2,
      height: 1,
      data: new Uint8Array([0, 51]),
      channels: 1,
    });
    assert.deepEqual(
      [...decodeImage(grey).data],
      f32([0, 0, 0, 0.2, 0.2, 0.2]),
    );
    assert.deepEqual(
      [...decodeImage(grey, { channels: 1 }).data],
      f32([0, 0.2]),
    );
  });

  await t.step("16-bit, 1-bit and palette PNGs", () => {
    const deep = encodePng({
      width: 1,
      height: 1,
      data: new Uint16Array([65535, 0, 13107]),
      channels: 3,
      depth: 16,
    });
    assert.deepEqual([...decodeImage(deep).data], f32([1, 0, 0.2]));
    // Ten 1-bit pixels 1011000001 pack into two bytes per row.
    const bits = encodePng({
      width: 10,
      height: 2,
      data: new Uint8Array([0b10110000, 0b01000000, 0xff, 0xc0]),
      channels: 1,
      depth: 1,
    });
    const oneBit = decodeImage(bits, { channels: 1 });
    assert.deepEqual(
      [...oneBit.data],
      [1, 0, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
    );
    const indexed = encodePng({
      width: 3,
      height: 1,
      data: new Uint8Array([2, 0, 1]),
      channels: 1,
      depth: 8,
      palette: [[255, 0, 0], [0, 255, 0], [0, 0, 51]],
    });
    assert.deepEqual(
      [...decodeImage(indexed).data],
      f32([0, 0, 0.2, 1, 0, 0, 0, 1, 0]),
    );
  });

  await t.step("grey from RGB uses ITU-R 601 luma", () => {
    const red = png(1, 1, () => [255, 0, 0]);
    const [luma] = decodeImage(red, { channels: 1 }).data;
    assert.ok(Math.abs(luma! - 0.299) < 1e-6);
  });

  await t.step("JPEG (lossy) within 3/255 of a flat colour", () => {
    const data = new Uint8Array(16 * 16 * 4);
    for (let p = 0; p < 256; p++) data.set([200, 100, 50, 255], p * 4);
    const bytes = jpeg.encode({ width: 16, height: 16, data }, 100).data;
    const image = decodeImage(new Uint8Array(bytes));
    assert.equal(image.width, 16);
    assert.equal(image.channels, 3);
    for (let p = 0; p < 256; p++) {
      [200, 100, 50].forEach((v, ch) =>
        assert.ok(Math.abs(image.data[p * 3 + ch]! - v / 255) <= 3 / 255)
      );
    }
  });

  await t.step("other bytes name the path", () => {
    assert.throws(
      () => decodeImage(new Uint8Array([1, 2, 3]), { path: "x/y.png" }),
      (e: Error) =>
        e instanceof SyntaxError &&
        e.message === "Cannot decode x/y.png: not a PNG or JPEG file",
    );
    const truncated = png(8, 8, () => [1, 2, 3]).subarray(0, 40);
    assert.throws(
      () => decodeImage(truncated, { path: "x/z.png" }),
      (e: Error) =>
        e instanceof SyntaxError &&
        e.message.startsWith("Cannot decode x/z.png"),
    );
  });
});

Deno.test("createImageFolder() centre-crops, then resizes", async (t) => {
  // Pixel (r, c) holds (10 r, 5 c, 77): the crop's offset can be read back.
  const pattern = (r: number, c: number): [number, number, number] => [
    10 * r,
    5 * c,
    77,
  ];
  await withDir(async (dir) => {
    for (const name of ["a.png", "b.png"]) {
      Deno.writeFileSync(`${dir}/${name}`, png(20, 30, pattern));
    }
    await t.step("crop 10 of a 20x30 image starts at (5, 10)", () => {
      const folder = createImageFolder({ dir, size: 10, crop: 10, val: 1 });
      assert.deepEqual(folder.imageShape, [10, 10, 3]);
      const { images } = folder.batch("train", [0]);
      for (let i = 0; i < 10; i++) {
        for (let j = 0; j < 10; j++) {
          const p = (i * 10 + j) * 3;
          const expected = pattern(5 + i, 10 + j).map((v) => v / 255);
          assert.deepEqual(
            [...images.subarray(p, p + 3)],
            expected.map(Math.fround),
          );
        }
      }
    });

    await t.step("resizing the crop matches resizeBilinear, in bytes", () => {
      const folder = createImageFolder({ dir, size: 4, crop: 10, val: 1 });
      const { images } = folder.batch("val", [0]);
      const decoded = decodeImage(Deno.readFileSync(`${dir}/a.png`));
      const crop = centerCrop(20, 30, { side: 10 });
      assert.deepEqual(crop, { top: 5, left: 10, height: 10, width: 10 });
      const expected = resizeBilinear(decoded, [4, 4], { crop });
      for (let k = 0; k < expected.length; k++) {
        assert.ok(
          Math.abs(images[k]! - Math.round(expected[k]! * 255) / 255) < 1e-6,
          `element ${k}`,
        );
      }
    });

    await t.step(
      "a crop larger than the image takes the centred square",
      () => {
        const folder = createImageFolder({ dir, size: 20, crop: 148, val: 1 });
        const { images } = folder.batch("train", [0]);
        // 20x20 square from column 5: pixel (0, 0) is source (0, 5).
        assert.equal(images[1], Math.fround(25 / 255));
        assert.equal(images[(19 * 20 + 19) * 3 + 1], Math.fround(120 / 255));
      },
    );

    await t.step("grey output has one channel", () => {
      const folder = createImageFolder({
        dir,
        size: 5,
        crop: 10,
        val: 1,
        channels: 1,
      });
      assert.deepEqual(folder.imageShape, [5, 5, 1]);
      assert.equal(folder.batch("train", [0]).images.length, 25);
    });
  });
});

Deno.test("createImageFolder() splits by a seeded permutation", async (t) => {
  await withDir(async (dir) => {
    // Ten flat images whose red channel, 20 i, names them; plus noise the
    // listing must skip and a JPEG in a subfolder.
    Deno.mkdirSync(`${dir}/sub`);
    for (let i = 0; i < 9; i++) {
      const name = i % 2 ? `img${i}.PNG` : `img${i}.png`;
      Deno.writeFileSync(`${dir}/${name}`, png(8, 8, () => [20 * i, 0, 0]));
    }
    const rgba = new Uint8Array(8 * 8 * 4);
    for (let p = 0; p < 64; p++) rgba.set([180, 0, 0, 255], p * 4);
    Deno.writeFileSync(
      `${dir}/sub/img9.jpeg`,
      jpeg.encode({ width: 8, height: 8, data: rgba }, 100).data,
    );
    Deno.writeFileSync(`${dir}/notes.txt`, new TextEncoder().encode("hi"));
    Deno.writeFileSync(`${dir}/.hidden.png`, png(8, 8, () => [0, 0, 0]));

    const options = { dir, size: 4, crop: 8, seed: 3 };
    const names = (folder: ReturnType<typeof createImageFolder>) =>
      (["train", "val"] as const).map((split) =>
        Array.from(
          { length: folder.size(split) },
          (_, i) => folder.file(split, i),
        )
      );

    await t.step("listing is sorted and skips other files", () => {
      assert.deepEqual(listImageFiles(dir), [
        "img0.png",
        "img1.PNG",
        "img2.png",
        "img3.PNG",
        "img4.png",
        "img5.PNG",
        "img6.png",
        "img7.PNG",
        "img8.png",
        "sub/img9.jpeg",
      ]);
    });

    await t.step("val 3 leaves 7; every file in exactly one split", () => {
      const folder = createImageFolder({ ...options, val: 3 });
      assert.equal(folder.size("train"), 7);
      assert.equal(folder.size("val"), 3);
      const [train, val] = names(folder);
      assert.deepEqual(
        [...train!, ...val!].sort(),
        listImageFiles(dir).sort(),
      );
      // Each split keeps listing order.
      assert.deepEqual(train, [...train!].sort());
      // The pixels are those of the named file.
      for (const split of ["train", "val"] as const) {
        const { images } = folder.batch(
          split,
          Array.from({ length: folder.size(split) }, (_, i) => i),
        );
        for (let i = 0; i < folder.size(split); i++) {
          const k = Number(/img(\d)/.exec(folder.file(split, i))![1]);
          assert.ok(Math.abs(images[i * 48]! * 255 - 20 * k) <= 3, `${k}`);
        }
      }
    });

    await t.step("the same seed splits the same way, others differ", () => {
      const a = names(createImageFolder({ ...options, val: 3 }));
      const b = names(createImageFolder({ ...options, val: 3 }));
      assert.deepEqual(a, b);
      const seeds = [0, 1, 2, 4, 5].map((seed) =>
        JSON.stringify(names(createImageFolder({ ...options, seed, val: 3 })))
      );
      assert.ok(seeds.some((s) => s !== JSON.stringify(a)));
      assert.notEqual(
        createImageFolder({ ...options, val: 3 }).fingerprint,
        createImageFolder({ ...options, seed: 4, val: 3 }).fingerprint,
      );
    });

    await t.step("valFraction rounds, train caps the training split", () => {
      const folder = createImageFolder({ ...options, valFraction: 0.25 });
      assert.equal(folder.size("val"), 3);
      assert.equal(createImageFolder(options).size("val"), 1);
      const capped = createImageFolder({ ...options, val: 3, train: 2 });
      assert.equal(capped.size("train"), 2);
      assert.deepEqual(
        names(capped)[0],
        names(createImageFolder({ ...options, val: 3 }))[0]!.slice(0, 2),
      );
    });

    await t.step("bad split options throw", () => {
      assert.throws(
        () => createImageFolder({ ...options, val: 2, valFraction: 0.2 }),
        TypeError,
      );
      assert.throws(
        () => createImageFolder({ ...options, val: 10 }),
        RangeError,
      );
      assert.throws(
        () => createImageFolder({ ...options, valFraction: 1 }),
        RangeError,
      );
      assert.throws(
        () => createImageFolder({ ...options, val: 3, train: 8 }),
        RangeError,
      );
      const folder = createImageFolder({ ...options, val: 3 });
      assert.throws(() => folder.batch("val", [3]), RangeError);
    });
  });
});

Deno.test("createImageFolder() caches prepared images up to a limit", async (t) => {
  await withDir(async (dir) => {
    for (let i = 0; i < 4; i++) {
      Deno.writeFileSync(
        `${dir}/${i}.png`,
        png(12, 10, (r, c) => [r * 9, c * 7, i * 50]),
      );
    }
    const options = { dir, size: 6, crop: 10, val: 1, seed: 0 };
    await t.step("cached and uncached batches agree", () => {
      const cached = createImageFolder(options);
      const uncached = createImageFolder({ ...options, cacheMegabytes: 0 });
      const first = cached.batch("train", [0, 1, 2]).images;
      assert.deepEqual(cached.batch("train", [0, 1, 2]).images, first);
      assert.deepEqual(uncached.batch("train", [0, 1, 2]).images, first);
    });

    await t.step(
      "a cached image survives its file; an uncached one does not",
      () => {
        const cached = createImageFolder(options);
        const uncached = createImageFolder({ ...options, cacheMegabytes: 0 });
        const unscanned = createImageFolder({
          ...options,
          cacheMegabytes: 0,
          scan: false,
        });
        const before = cached.batch("train", [0]).images;
        const path = `${dir}/${cached.file("train", 0)}`;
        const good = Deno.readFileSync(path);
        Deno.writeFileSync(path, new Uint8Array([1, 2, 3, 4]));
        assert.deepEqual(cached.batch("train", [0]).images, before);
        assert.throws(
          () => uncached.batch("train", [0]),
          (e: Error) =>
            e.message ===
              `Image ${path} changed after the folder was scanned; start again to use the new images`,
        );
        assert.throws(
          () => unscanned.batch("train", [0]),
          (e: Error) => e instanceof SyntaxError && e.message.includes(path),
        );
        Deno.writeFileSync(path, good);
      },
    );
  });
});

Deno.test("createImageFolder() rejects missing or empty folders", async (t) => {
  await withDir(async (dir) => {
    await t.step("missing", () => {
      assert.throws(
        () => createImageFolder({ dir: `${dir}/nope` }),
        (e: Error) =>
          e instanceof Deno.errors.NotFound &&
          e.message === `Image folder not found: ${dir}/nope`,
      );
    });
    await t.step("empty of images", () => {
      Deno.writeFileSync(`${dir}/readme.txt`, new Uint8Array(1));
      assert.throws(
        () => createImageFolder({ dir }),
        (e: Error) =>
          e instanceof RangeError &&
          e.message.startsWith(`No PNG or JPEG image in ${dir}`),
      );
    });
    await t.step("a file, not a folder", () => {
      assert.throws(
        () => createImageFolder({ dir: `${dir}/readme.txt` }),
        Deno.errors.NotADirectory,
      );
    });
  });
});

/** A baseline JPEG of `height` x `width`, grey gradient. */
function jpg(height: number, width: number): Uint8Array {
  const data = new Uint8Array(height * width * 4);
  for (let i = 0; i < height * width; i++) {
    data.fill((i * 5) % 256, 4 * i, 4 * i + 3);
    data[4 * i + 3] = 255;
  }
  return new Uint8Array(jpeg.encode({ width, height, data }, 90).data);
}

/** Asserts a one-line error of class `type` whose message matches. */
function oneLine(type: ErrorConstructor, pattern: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof type, `${e}`);
    assert.ok(!e.message.includes("\n"), e.message);
    assert.match(e.message, pattern);
    return true;
  };
}

Deno.test("decodeImage() refuses damaged images in one line", async (t) => {
  const good = png(6, 5, (r, c) => [r * 40, c * 50, 7]);
  await t.step("a PNG with any one byte changed after its signature", () => {
    // Chunk checksums: every changed byte past the 8-byte signature is
    // either a structure error or a CRC mismatch, never a silent decode.
    for (let i = 8; i < good.length; i++) {
      const bad = good.slice();
      bad[i]! ^= 0x20;
      assert.throws(
        () => decodeImage(bad, { path: "x.png" }),
        oneLine(SyntaxError, /^Cannot decode x\.png: /),
        `byte ${i}`,
      );
    }
  });
  await t.step("every truncation of a PNG and a JPEG", () => {
    const photo = jpg(9, 7);
    for (const [name, bytes] of [["x.png", good], ["x.jpg", photo]] as const) {
      for (let n = 0; n < bytes.length; n += 3) {
        assert.throws(
          () => decodeImage(bytes.subarray(0, n), { path: name }),
          oneLine(SyntaxError, new RegExp(`^Cannot decode ${name}: `)),
          `${name} cut to ${n} bytes`,
        );
      }
    }
  });
  await t.step("the reason is named", () => {
    assert.throws(
      () => decodeImage(good.subarray(0, 40), { path: "a.png" }),
      oneLine(SyntaxError, /damaged or truncated PNG/),
    );
    assert.throws(
      () => decodeImage(new TextEncoder().encode("hello"), { path: "a.jpg" }),
      oneLine(SyntaxError, /not a PNG or JPEG file/),
    );
  });
});

Deno.test("createImageFolder() scans every image at creation", async (t) => {
  /** Ten good images (PNG and JPEG), 12x10, sorted 00..09. */
  const fill = (dir: string) => {
    for (let i = 0; i < 10; i++) {
      const name = `${String(i).padStart(2, "0")}`;
      if (i % 3 === 2) Deno.writeFileSync(`${dir}/${name}.jpg`, jpg(12, 10));
      else {
        Deno.writeFileSync(
          `${dir}/${name}.png`,
          png(12, 10, (r, c) => [r * 20, c * 20, i * 25]),
        );
      }
    }
  };
  const options = (dir: string) => ({ dir, size: 4, crop: 10, val: 2 });

  await t.step("a good folder: counts, sizes and a content hash", async () => {
    await withDir(async (dir) => {
      fill(dir);
      const folder = createImageFolder(options(dir));
      const scan = folder.verify();
      assert.equal(scan.images, 10);
      assert.deepEqual(scan.sizes, { "12x10": 10 });
      assert.equal(
        scan.bytes,
        [...Deno.readDirSync(dir)].reduce(
          (sum, e) => sum + Deno.statSync(`${dir}/${e.name}`).size,
          0,
        ),
      );
      assert.match(scan.sha256, /^[0-9a-f]{64}$/);
      assert.ok(folder.fingerprint.includes(scan.sha256));
      assert.equal(folder.verify(), scan, "verified once");
      // The same images elsewhere hash the same; one changed pixel does not.
      await withDir((copy) => {
        fill(copy);
        assert.equal(
          createImageFolder(options(copy)).verify().sha256,
          scan.sha256,
        );
        Deno.writeFileSync(
          `${copy}/03.png`,
          png(12, 10, (r, c) => [r * 20, c * 20, r === 5 && c === 5 ? 1 : 75]),
        );
        const changed = createImageFolder(options(copy));
        assert.notEqual(changed.verify().sha256, scan.sha256);
        assert.notEqual(
          changed.fingerprint.split(":").at(-1),
          folder.fingerprint.split(":").at(-1),
        );
      });
    });
  });

  await t.step(
    "damaged images anywhere are reported at creation, by name",
    async () => {
      await withDir((dir) => {
        fill(dir);
        const flip = Deno.readFileSync(`${dir}/04.png`);
        flip[flip.length - 20]! ^= 0x01;
        Deno.writeFileSync(`${dir}/04.png`, flip);
        const cut = Deno.readFileSync(`${dir}/05.jpg`);
        Deno.writeFileSync(`${dir}/05.jpg`, cut.subarray(0, cut.length >> 1));
        Deno.writeFileSync(`${dir}/07.png`, new Uint8Array(0));
        Deno.writeFileSync(`${dir}/09.png`, new TextEncoder().encode("text"));
        assert.throws(
          () => createImageFolder(options(dir)),
          oneLine(
            SyntaxError,
            new RegExp(
              `^Cannot decode ${dir}/04\\.png: .*; 3 more unusable images in ${dir}: 05\\.jpg, 07\\.png, 09\\.png$`,
            ),
          ),
        );
      });
    },
  );

  await t.step(
    "without a scan: created, then found by batch or verify()",
    async () => {
      await withDir((dir) => {
        fill(dir);
        Deno.writeFileSync(`${dir}/06.png`, new Uint8Array([0x89, 0x50, 0x4e]));
        const folder = createImageFolder({ ...options(dir), scan: false });
        assert.throws(() => folder.verify(), oneLine(SyntaxError, /06\.png/));
        const [split, index] = (["train", "val"] as const)
          .flatMap((split) =>
            [...Array(folder.size(split)).keys()].map((i) =>
              [split, i] as const
            )
          )
          .find(([split, i]) => folder.file(split, i) === "06.png")!;
        assert.throws(
          () => folder.batch(split, [index]),
          oneLine(SyntaxError, /06\.png/),
        );
      });
    },
  );

  await t.step("images of the wrong size, given imageSize", async () => {
    await withDir((dir) => {
      fill(dir);
      Deno.writeFileSync(`${dir}/02.jpg`, jpg(12, 11));
      Deno.writeFileSync(`${dir}/03.png`, png(10, 12, () => [0, 0, 0]));
      assert.throws(
        () => createImageFolder({ ...options(dir), imageSize: [12, 10] }),
        oneLine(
          RangeError,
          new RegExp(
            `^Image ${dir}/02\\.jpg is 12x11, expected 12x10 \\(option imageSize\\); 1 more unusable image in ${dir}: 03\\.png$`,
          ),
        ),
      );
      // Without imageSize mixed sizes are fine and counted.
      assert.deepEqual(createImageFolder(options(dir)).verify().sizes, {
        "12x10": 8,
        "12x11": 1,
        "10x12": 1,
      });
      assert.throws(
        () => createImageFolder({ ...options(dir), imageSize: [0, 10] }),
        RangeError,
      );
    });
  });

  await t.step("files outside the splits are not read", async () => {
    await withDir((dir) => {
      fill(dir);
      const folder = createImageFolder({ ...options(dir), train: 3 });
      const used = new Set(
        [0, 1, 2].map((i) => folder.file("train", i))
          .concat([0, 1].map((i) => folder.file("val", i))),
      );
      const unused = [...Deno.readDirSync(dir)].map((e) => e.name)
        .find((name) => !used.has(name))!;
      Deno.writeFileSync(`${dir}/${unused}`, new Uint8Array(3));
      assert.equal(
        createImageFolder({ ...options(dir), train: 3 }).verify().images,
        5,
      );
    });
  });

  await t.step(
    "without a scan the fingerprint follows sizes and times",
    async () => {
      await withDir((dir) => {
        fill(dir);
        const a =
          createImageFolder({ ...options(dir), scan: false }).fingerprint;
        assert.equal(
          createImageFolder({ ...options(dir), scan: false }).fingerprint,
          a,
        );
        const later = new Date(Date.now() + 60_000);
        Deno.utimeSync(`${dir}/01.png`, later, later);
        assert.notEqual(
          createImageFolder({ ...options(dir), scan: false }).fingerprint,
          a,
        );
      });
    },
  );
});

Deno.test("image-folder plug-in says how to obtain the images when its folder is missing", async (t) => {
  const obtain = "get them from example.org";
  const create = (options: Record<string, unknown>) =>
    imageFolderPlugin.create(
      imageFolderPlugin.options.parse(options) as never,
      { seed: 0 },
    );
  await t.step("no dir", () => {
    assert.throws(
      () => create({ obtain }),
      /^RangeError: data\.dir is not set \(a folder of images\); get them from example\.org$/,
    );
  });
  await t.step("a dir that does not exist", () => {
    assert.throws(
      () => create({ dir: "/no/such/folder", obtain }),
      (e: Error) =>
        e instanceof RangeError && !e.message.includes("\n") &&
        e.message.includes("/no/such/folder") && e.message.endsWith(obtain),
    );
  });
});

Deno.test("createImageFolder() keeps a scan record in scanCache", async (t) => {
  /** Ten good images, 12x10, last modified an hour ago. */
  const fill = (dir: string) => {
    for (let i = 0; i < 10; i++) {
      const name = String(i).padStart(2, "0");
      const bytes = i % 3 === 2
        ? jpg(12, 10)
        : png(12, 10, (r, c) => [r * 20, c * 20, i * 25]);
      Deno.writeFileSync(
        `${dir}/${name}.${i % 3 === 2 ? "jpg" : "png"}`,
        bytes,
      );
    }
    for (const e of Deno.readDirSync(dir)) age(`${dir}/${e.name}`, 3600);
  };
  /** Sets a file's times `seconds` into the past. */
  const age = (path: string, seconds: number) => {
    const then = new Date(Date.now() - seconds * 1000);
    Deno.utimeSync(path, then, then);
  };
  /** The record files of a cache folder. */
  const records = (cache: string) =>
    [...Deno.readDirSync(cache)].map((e) => `${cache}/${e.name}`).sort();
  /** A folder, its images and a cache folder beside them. */
  const withImages = (
    fn: (dir: string, cache: string) => Promise<void> | void,
  ) =>
    withDir(async (root) => {
      Deno.mkdirSync(`${root}/images`);
      fill(`${root}/images`);
      await fn(`${root}/images`, `${root}/cache/scans`);
    });
  const options = (dir: string, cache?: string) => ({
    dir,
    size: 4,
    crop: 10,
    val: 2,
    ...(cache === undefined ? {} : { scanCache: cache }),
  });
  /** Every example of both splits, as served. */
  const everything = (folder: ReturnType<typeof createImageFolder>) =>
    (["train", "val"] as const).map((split) =>
      folder.batch(split, [...Array(folder.size(split)).keys()]).images
    );

  await t.step(
    "a second creation trusts the record: same fingerprint, scan and images",
    async () => {
      await withImages((dir, cache) => {
        const plain = createImageFolder(options(dir));
        const first = createImageFolder(options(dir, cache));
        assert.equal(first.verify().trusted, 0);
        assert.equal(records(cache).length, 1);
        const record = Deno.readTextFileSync(records(cache)[0]!);
        const second = createImageFolder(options(dir, cache));
        const scan = second.verify();
        assert.equal(scan.trusted, 10);
        assert.deepEqual(scan.warnings, []);
        assert.equal(second.fingerprint, plain.fingerprint);
        assert.equal(first.fingerprint, plain.fingerprint);
        const { trusted: _a, ...cachedScan } = scan;
        const { trusted: _b, ...plainScan } = plain.verify();
        assert.deepEqual(cachedScan, plainScan);
        assert.deepEqual(everything(second), everything(plain));
        // Nothing new learnt: the record is not rewritten.
        assert.equal(Deno.readTextFileSync(records(cache)[0]!), record);
      });
    },
  );

  await t.step(
    "trusted files are not read at creation, but their bytes are checked when read",
    async () => {
      await withImages((dir, cache) => {
        createImageFolder(options(dir, cache));
        // Garbage of the same size under the same time: trusted unread.
        const path = `${dir}/04.png`;
        const { size, mtime } = Deno.statSync(path);
        Deno.writeFileSync(path, new Uint8Array(size).fill(7));
        Deno.utimeSync(path, mtime!, mtime!);
        const folder = createImageFolder({
          ...options(dir, cache),
          cacheMegabytes: 0,
        });
        assert.equal(folder.verify().trusted, 10);
        const split = (["train", "val"] as const).find((s) =>
          [...Array(folder.size(s)).keys()].some((i) =>
            folder.file(s, i) === "04.png"
          )
        )!;
        const index = [...Array(folder.size(split)).keys()]
          .find((i) => folder.file(split, i) === "04.png")!;
        assert.throws(
          () => folder.batch(split, [index]),
          oneLine(Error, /04\.png changed after the folder was scanned/),
        );
      });
    },
  );

  await t.step(
    "a changed file is read again: a damaged one is reported by name",
    async () => {
      await withImages((dir, cache) => {
        createImageFolder(options(dir, cache));
        const [path] = records(cache);
        const record = Deno.readTextFileSync(path!);
        const flip = Deno.readFileSync(`${dir}/04.png`);
        flip[flip.length - 20]! ^= 0x01;
        Deno.writeFileSync(`${dir}/04.png`, flip);
        age(`${dir}/04.png`, 60);
        assert.throws(
          () => createImageFolder(options(dir, cache)),
          oneLine(SyntaxError, new RegExp(`^Cannot decode ${dir}/04\\.png: `)),
        );
        // A failed scan leaves the record as it was.
        assert.equal(Deno.readTextFileSync(path!), record);
        // Replaced by a good image: only it is read, and recorded.
        Deno.writeFileSync(
          `${dir}/04.png`,
          png(12, 10, (r, c) => [c * 9, r * 9, 1]),
        );
        age(`${dir}/04.png`, 60);
        const folder = createImageFolder(options(dir, cache));
        assert.equal(folder.verify().trusted, 9);
        assert.equal(
          folder.fingerprint,
          createImageFolder(options(dir)).fingerprint,
        );
        assert.notEqual(Deno.readTextFileSync(path!), record);
        assert.equal(
          createImageFolder(options(dir, cache)).verify().trusted,
          10,
        );
      });
    },
  );

  await t.step(
    "a file modified just before its scan is not recorded",
    async () => {
      await withImages((dir, cache) => {
        Deno.writeFileSync(`${dir}/00.png`, Deno.readFileSync(`${dir}/01.png`));
        createImageFolder(options(dir, cache));
        assert.equal(
          createImageFolder(options(dir, cache)).verify().trusted,
          9,
        );
      });
    },
  );

  await t.step(
    "an unusable record is said, not used, and replaced by the scan",
    async () => {
      const damages: [string, (text: string) => string, RegExp][] = [
        ["cut short", (s) => s.slice(0, s.length >> 1), /not JSON/],
        ["not an object", () => "[1, 2]", /record: /],
        [
          "a digest changed",
          (s) =>
            s.replace(
              /"([0-9a-f]{63})([0-9a-f])",12,10\]/,
              (_, head, last) => `"${head}${last === "0" ? "1" : "0"}",12,10]`,
            ),
          /checksum/,
        ],
        [
          "another folder",
          (s) => s.replace(/"dir":"[^"]*"/, '"dir":"/elsewhere"'),
          /another folder/,
        ],
        [
          "another layout",
          (s) => s.replace("irmae-image-scan-1", "x"),
          /format/,
        ],
      ];
      for (const [what, damage, reason] of damages) {
        await withImages((dir, cache) => {
          createImageFolder(options(dir, cache));
          const [path] = records(cache);
          const good = Deno.readTextFileSync(path!);
          const bad = damage(good);
          assert.notEqual(bad, good, what);
          Deno.writeTextFileSync(path!, bad);
          const said: string[] = [];
          const folder = createImageFolder({
            ...options(dir, cache),
            onWarning: (m) => said.push(m),
          });
          const scan = folder.verify();
          assert.equal(scan.trusted, 0, what);
          assert.equal(said.length, 1, what);
          assert.deepEqual(scan.warnings, said);
          assert.ok(!said[0]!.includes("\n"));
          assert.ok(said[0]!.startsWith(`Scan record ${path} is unusable (`));
          assert.match(said[0]!, reason, what);
          assert.equal(
            folder.fingerprint,
            createImageFolder(options(dir)).fingerprint,
          );
          // Rewritten whole by the successful scan.
          assert.equal(Deno.readTextFileSync(path!), good, what);
        });
      }
    },
  );

  await t.step("a damaged record survives a failed scan", async () => {
    await withImages((dir, cache) => {
      createImageFolder(options(dir, cache));
      const [path] = records(cache);
      Deno.writeTextFileSync(path!, "{");
      Deno.writeFileSync(`${dir}/06.png`, new Uint8Array(3));
      assert.throws(
        () => createImageFolder(options(dir, cache)),
        oneLine(SyntaxError, /06\.png/),
      );
      assert.equal(Deno.readTextFileSync(path!), "{");
    });
  });

  await t.step(
    "a cache that cannot be written is a warning, not an error",
    async () => {
      await withImages((dir, cache) => {
        Deno.mkdirSync(cache.replace(/\/scans$/, ""));
        Deno.writeTextFileSync(cache, "a file where the folder should be");
        const folder = createImageFolder(options(dir, `${cache}/scans`));
        const [warning, ...rest] = folder.verify().warnings;
        assert.deepEqual(rest, []);
        assert.match(warning!, /^Scan record .* not written \(.*\); the next/);
        assert.equal(
          folder.fingerprint,
          createImageFolder(options(dir)).fingerprint,
        );
      });
    },
  );

  await t.step(
    "records are kept per file list, channels and imageSize",
    async () => {
      await withImages((dir, cache) => {
        const some = createImageFolder({ ...options(dir, cache), train: 3 });
        assert.equal(some.verify().images, 5);
        // The five read before are trusted; the other five are read now.
        assert.equal(
          createImageFolder(options(dir, cache)).verify().trusted,
          5,
        );
        assert.equal(records(cache).length, 1);
        assert.equal(
          createImageFolder({ ...options(dir, cache), channels: 1 }).verify()
            .trusted,
          0,
        );
        assert.equal(
          createImageFolder({ ...options(dir, cache), imageSize: [12, 10] })
            .verify().trusted,
          0,
        );
        assert.equal(records(cache).length, 3);
        Deno.writeFileSync(`${dir}/10.jpg`, jpg(12, 10));
        assert.equal(
          createImageFolder(options(dir, cache)).verify().trusted,
          0,
        );
        assert.equal(records(cache).length, 4);
      });
    },
  );
});
