import assert from "node:assert/strict";
import { readRecord, RUN_RESULTS_SCHEMA } from "./records.ts";
import { tempDir } from "../../testing/support/temp_files.ts";

Deno.test("readRecord() returns a value only when whole and written for the key", () => {
  const dir = tempDir();
  const path = `${dir}/results.json`;
  const text = JSON.stringify({ experiment: "x", key: "k1", models: [] });
  Deno.writeTextFileSync(path, text);
  const ok = readRecord(path, RUN_RESULTS_SCHEMA, "k1");
  assert.ok(ok !== undefined && "value" in ok);
  const other = readRecord(path, RUN_RESULTS_SCHEMA, "k2");
  assert.ok(other !== undefined && "problem" in other && other.stale);
  Deno.writeTextFileSync(path, text.slice(0, 20));
  const cut = readRecord(path, RUN_RESULTS_SCHEMA, "k1");
  assert.ok(cut !== undefined && "problem" in cut && !cut.stale);
  assert.equal(readRecord(`${dir}/none.json`, RUN_RESULTS_SCHEMA), undefined);
  Deno.removeSync(dir, { recursive: true });
});
