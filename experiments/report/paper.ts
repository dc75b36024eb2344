/**
 * The paper's numbers beside a run's: which tables of
 * `paper_results.json` (copied from the paper, Jing et al. 2020)
 * belong to which experiment, and how a paper table's rows line up with the
 * run's models. The mapping is the one table {@link PAPER_COUNTERPARTS};
 * everything else renders whatever it names.
 *
 * @module
 */
import paperResults from "./paper_results.json" with {
  type: "json",
};
import type { ResolvedManifest, ResolvedModel } from "../manifest/manifest.ts";
import { type Html, html, table } from "./html.ts";

/** A model's outcome as the report shows it. */
export interface ModelOutcome {
  /** The model's name. */
  name: string;
  /** Validation MSE per pixel. */
  valMse: number;
  /** Latent rank by threshold key, e.g. `1e-3`. */
  rank: Record<string, number>;
  /** `ok` or `failed`. */
  status: string;
}

/** Where an experiment meets the paper. */
export interface PaperCounterpart {
  /** Experiment names that map here, exactly or as a prefix before `-`. */
  experiments: readonly string[];
  /** Data set kinds that map here when no experiment name matches. */
  data?: readonly string[];
  /** Keys of the reference file to show, dotted for nested ones. */
  keys: readonly string[];
  /**
   * Lines up the rows of a column table (`key`) with the run's models: a
   * row's `column` value equals the model's manifest `field` (dotted path).
   */
  join?: { key: string; column: string; field: string };
  /** A reference key holding the true latent dimension, set beside our ranks. */
  intrinsicDim?: string;
}

/** The experiments with a counterpart in the paper. */
export const PAPER_COUNTERPARTS: readonly PaperCounterpart[] = [
  {
    experiments: ["shapes"],
    data: ["shapes"],
    keys: ["shapes_claim", "hyperparameters.shapes"],
    intrinsicDim: "shapes_intrinsic_dim",
  },
  {
    experiments: ["depth"],
    keys: ["table6_depth_mnist", "hyperparameters.mnist"],
    join: {
      key: "table6_depth_mnist",
      column: "l",
      field: "regularizer.numMatrices",
    },
  },
  {
    experiments: ["init-variance"],
    keys: ["table5_init_variance_mnist", "hyperparameters.mnist"],
    join: {
      key: "table5_init_variance_mnist",
      column: "variance_multiplier",
      field: "regularizer.initScale",
    },
  },
  {
    experiments: ["mnist"],
    data: ["mnist"],
    keys: [
      "table1_fid",
      "table2_classification_error_percent",
      "hyperparameters.mnist",
    ],
  },
  {
    experiments: ["celeba"],
    keys: ["table1_fid", "hyperparameters.celeba"],
  },
  {
    experiments: ["latent-dim"],
    keys: ["table8_celeba_latent_dim_fid", "hyperparameters.celeba"],
    join: {
      key: "table8_celeba_latent_dim_fid",
      column: "latent_dim",
      field: "latentDim",
    },
  },
  {
    experiments: ["baselines"],
    keys: ["table7_celeba_fid", "hyperparameters.celeba"],
  },
];

/** The paper's hyperparameter names and how to read each from a manifest. */
const HYPERPARAMETERS: Record<string, (m: ResolvedManifest) => unknown> = {
  lr: (m) => m.train?.lr,
  epochs: (m) => {
    const t = m.train as {
      epochs?: number;
      steps?: number;
      batchSize?: number;
    };
    const n = Number(m.data?.train);
    if (typeof t?.epochs === "number") return t.epochs;
    if (!(n > 0) || !t?.steps || !t.batchSize) return undefined;
    return Math.round(t.steps * t.batchSize / n * 100) / 100;
  },
  latent_dim: (m) => distinct(m.models?.map((x) => x.latentDim)),
  batch_size: (m) => m.train?.batchSize,
  train: (m) => m.data?.train,
  eval: (m) => m.data?.val,
  l: (m) =>
    distinct(
      m.models?.filter((x) => x.regularizer?.kind === "linear-chain")
        .map((x) => x.regularizer.numMatrices),
    ),
};

function distinct(values: readonly unknown[] | undefined): unknown {
  const set = [...new Set((values ?? []).filter((v) => v !== undefined))];
  return set.length === 0 ? undefined : set.length === 1 ? set[0] : set;
}

/**
 * The counterparts of an experiment: those naming it, else those naming its
 * data set.
 *
 * @param experiment The manifest's name, e.g. `shapes` or `shapes-paper`.
 * @param dataKind The manifest's data kind.
 * @returns The matching entries, possibly none.
 */
export function findCounterparts(
  experiment: string,
  dataKind: string | undefined,
): PaperCounterpart[] {
  const byName = PAPER_COUNTERPARTS.filter((c) =>
    c.experiments.some((e) =>
      experiment === e || experiment.startsWith(`${e}-`)
    )
  );
  if (byName.length > 0) return byName;
  return PAPER_COUNTERPARTS.filter((c) =>
    dataKind !== undefined && (c.data ?? []).includes(dataKind)
  );
}

function lookup(root: unknown, path: string): unknown {
  let v: unknown = root;
  for (const part of path.split(".")) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

function label(key: string): string {
  return key.replace(/^hyperparameters\./, "hyperparameters: ")
    .replace(/_/g, " ");
}

function isScalar(v: unknown): boolean {
  return v === null || ["string", "number", "boolean"].includes(typeof v);
}

/**
 * Text of a reference or manifest value; `pairs` reads a pair of numbers as
 * (mean, std), as the cells of Table 2 are.
 */
function cellText(v: unknown, pairs = false): string {
  if (typeof v === "number") {
    if (Number.isInteger(v)) return String(v);
    return Math.abs(v) < 0.01
      ? v.toExponential()
      : String(Number(v.toPrecision(4)));
  }
  if (
    pairs && Array.isArray(v) && v.length === 2 &&
    v.every((x) => typeof x === "number")
  ) {
    return `${cellText(v[0])} ± ${cellText(v[1])}`;
  }
  if (Array.isArray(v)) return v.map((x) => cellText(x)).join(", ");
  if (v === undefined) return "—";
  return isScalar(v) ? String(v) : JSON.stringify(v);
}

/** A number stays a number (right-aligned in a table), else text. */
function cell(v: unknown): unknown {
  return typeof v === "number" ? v : cellText(v);
}

/** Column tables: the array-valued fields, all of one length. */
function columns(v: Record<string, unknown>): string[] | undefined {
  const keys = Object.keys(v).filter((k) => Array.isArray(v[k]));
  if (keys.length < 2) return undefined;
  const n = (v[keys[0]!] as unknown[]).length;
  return keys.every((k) => (v[k] as unknown[]).length === n) ? keys : undefined;
}

/**
 * Renders any value of the reference file: text as a quote, a record of
 * equal-length arrays as a table with one row per index, a record of
 * scalars as a one-row table, nested records as nested tables.
 *
 * @param value The value.
 * @returns The markup.
 */
export function renderReferenceValue(value: unknown): Html {
  if (typeof value === "string") return html`<blockquote>${value}</blockquote>`;
  if (isScalar(value) || Array.isArray(value)) {
    return html`<p>${cellText(value)}</p>`;
  }
  const record = value as Record<string, unknown>;
  const cols = columns(record);
  if (cols !== undefined) {
    const n = (record[cols[0]!] as unknown[]).length;
    const rest = Object.keys(record).filter((k) => !cols.includes(k));
    return html`${
      table(
        cols.map(label),
        Array.from(
          { length: n },
          (_, i) =>
            cols.map((c) => cellText((record[c] as unknown[])[i], true)),
        ),
        { className: "paper" },
      )
    }${
      rest.map((k) =>
        html`<p class="note"><b>${label(k)}:</b> ${cellText(record[k])}</p>`
      )
    }`;
  }
  const keys = Object.keys(record);
  if (keys.every((k) => isScalar(record[k]))) {
    return table(keys.map(label), [keys.map((k) => cellText(record[k]))], {
      className: "paper",
    });
  }
  return html`
    <table class="kv paper">
      <tbody>${keys.map((k) =>
        html`
          <tr>
            <th>${label(k)}</th>
            <td>${renderReferenceValue(record[k])}</td>
          </tr>
        `
      )}</tbody>
    </table>
  `;
}

function hyperparameterTable(
  paper: Record<string, unknown>,
  manifest: ResolvedManifest,
): Html {
  return table(
    ["setting", "paper", "this run"],
    Object.keys(paper).map((k) => [
      label(k),
      cellText(paper[k]),
      cellText(HYPERPARAMETERS[k]?.(manifest)),
    ]),
    { className: "paper" },
  );
}

function joinTable(
  join: NonNullable<PaperCounterpart["join"]>,
  manifest: ResolvedManifest,
  outcomes: readonly ModelOutcome[],
  rankKeys: readonly string[],
): Html {
  const record = lookup(paperResults, join.key) as Record<string, unknown>;
  const cols = columns(record) ?? [];
  const n = cols.length > 0 ? (record[cols[0]!] as unknown[]).length : 0;
  const models = manifest.models ?? [];
  const used = new Set<number>();
  const ours = (i: number | undefined) => {
    if (i === undefined) {
      return ["—", ...rankKeys.map(() => "—"), "—"];
    }
    const o = outcomes.find((x) => x.name === models[i]!.name);
    return [
      models[i]!.name,
      ...rankKeys.map((k) => o?.status === "ok" ? cell(o.rank[k]) : "—"),
      o?.status === "ok" ? o.valMse : "failed",
    ];
  };
  const rows: unknown[][] = [];
  for (let r = 0; r < n; r++) {
    const paperCells = cols.map((c) =>
      cellText((record[c] as unknown[])[r], true)
    );
    const key = (record[join.column] as unknown[])[r];
    const matches = models.map((m, i) => [m, i] as const)
      .filter(([m]) => lookup(m, join.field) === key).map(([, i]) => i);
    if (matches.length === 0) rows.push([...paperCells, ...ours(undefined)]);
    for (const i of matches) {
      used.add(i);
      rows.push([...paperCells, ...ours(i)]);
    }
  }
  models.forEach((_, i) => {
    if (!used.has(i)) rows.push([...cols.map(() => "—"), ...ours(i)]);
  });
  return table(
    [
      ...cols.map((c) => `paper: ${label(c)}`),
      "our model",
      ...rankKeys.map((k) => `our rank@${k}`),
      "our val MSE",
    ],
    rows,
    { className: "paper join" },
  );
}

function intrinsicTable(
  dim: number,
  manifest: ResolvedManifest,
  outcomes: readonly ModelOutcome[],
  rankKeys: readonly string[],
): Html {
  return table(
    [
      "our model",
      "regularizer",
      ...rankKeys.map((k) => `our rank@${k}`),
      "intrinsic dim (paper)",
    ],
    (manifest.models ?? []).map((m: ResolvedModel) => {
      const o = outcomes.find((x) => x.name === m.name);
      return [
        m.name,
        m.regularizer?.kind ?? "",
        ...rankKeys.map((k) => o?.status === "ok" ? cell(o.rank[k]) : "—"),
        dim,
      ];
    }),
    { className: "paper join" },
  );
}

/**
 * The "paper vs this run" section of a report, or a note that the
 * experiment has no counterpart.
 *
 * @param manifest The run's resolved manifest.
 * @param outcomes The run's models.
 * @returns The section body.
 */
export function paperSection(
  manifest: ResolvedManifest,
  outcomes: readonly ModelOutcome[],
): Html {
  const found = findCounterparts(manifest.name, manifest.data?.kind);
  const source = html`<p class="note">Source: ${paperResults.source}</p>${
    paperResults.notes.map((n) => html`<p class="note">${n}</p>`)
  }`;
  if (found.length === 0) {
    return html`
      <p
        class="missing">The paper has no counterpart for experiment “${manifest
          .name}” (data: ${manifest.data?.kind ?? "unknown"}).</p>
    `;
  }
  const rankKeys = [
    ...new Set(outcomes.flatMap((o) => Object.keys(o.rank ?? {}))),
  ];
  const parts: Html[] = [];
  for (const c of found) {
    if (c.intrinsicDim !== undefined) {
      const dim = lookup(paperResults, c.intrinsicDim);
      if (typeof dim === "number") {
        parts.push(
          html`<h3>Our latent rank beside the intrinsic dimension (${dim})</h3>${
            intrinsicTable(dim, manifest, outcomes, rankKeys)
          }`,
        );
      }
    }
    if (c.join !== undefined) {
      parts.push(
        html`<h3>${label(c.join.key)}, row by row beside ours</h3>${
          joinTable(c.join, manifest, outcomes, rankKeys)
        }`,
      );
    }
    for (const key of c.keys) {
      if (key === c.join?.key) continue; // shown whole in the join table
      const value = lookup(paperResults, key);
      if (value === undefined) {
        parts.push(
          html`<p class="missing">Reference key ${key} not found.</p>`,
        );
      } else if (key.startsWith("hyperparameters.")) {
        const paperData = key.slice("hyperparameters.".length);
        const ours = manifest.data?.kind;
        parts.push(
          html`<h3>${label(key)}</h3>${
            paperData !== ours
              ? html`
                <p
                  class="missing">The paper ran this on ${paperData}; this run uses ${ours ??
                    "unknown data"}, so compare trends, not values.</p>
              `
              : ""
          }${hyperparameterTable(value as Record<string, unknown>, manifest)}`,
        );
      } else {
        parts.push(html`<h3>${label(key)}</h3>${renderReferenceValue(value)}`);
      }
    }
  }
  return html`${parts}${source}`;
}
