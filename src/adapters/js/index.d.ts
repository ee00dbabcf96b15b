/** What the core decided. */
export interface Decision {
  type: 'decision';
  /** False when the module answers the request itself with `response`: a
   * denial, or (status 200, reason `protected_resource_metadata`) the RFC
   * 9728 metadata the policy's `protected_resource` describes. */
  allow: boolean;
  status: number;
  route: string | null;
  /** Reason code of a denial, e.g. `expired`, `insufficient_scope`, or
   * `protected_resource_metadata`. */
  reason?: string;
  fromCache?: boolean;
  /** False when the route runs in shadow mode. */
  enforced?: boolean;
  /** In shadow mode, the denial enforcement would have made. */
  wouldDeny?: { status: number; reason: string } | null;
  /** Only with `GateOptions.principal: true`. */
  principal?: {
    kind: 'user' | 'service' | 'pat' | 'sat';
    subject: string;
    user_id: string | null;
    client_id: string | null;
    db: string | null;
    scopes: string;
    sid: string | null;
    jti: string | null;
    is_admin: boolean;
    user_type: string | null;
    expires_at: number;
  } | null;
  headers?: { remove: string[]; set: [string, string][] };
  response?: { status: number; headers: [string, string][]; body: string };
}

export interface GateOptions {
  /** The compiled erpgate_bg.wasm. */
  wasm: WebAssembly.Module | BufferSource;
  /** Base URLs of the policy's upstreams, by name. */
  upstreams?: Record<string, string>;
  /** Introspection / revocation-feed client credentials (from worker secrets). */
  clientCredentials?: { clientId: string; clientSecret: string };
  /** Verify signatures with WebCrypto (default true). */
  hostCrypto?: boolean;
  /** The key DPoP server nonces are minted under: base64url of at least 32
   * random bytes, from a worker secret so that every isolate agrees.
   * Required when the policy's `dpop.nonces` is on. */
  dpopNonceKey?: string;
  /** Clock in Unix milliseconds (default Date.now). */
  now?: () => number;
  /** Each decision carries `principal` (default false: the identity
   * headers carry it to the upstream). */
  principal?: boolean;
  /** Receives each decision-log line (JSON text). */
  onDecision?: (line: string) => void;
  /** False keeps decision-log lines off `console`. */
  logDecisions?: boolean;
  /** Replaces fetch for upstream calls (tests). */
  fetch?: (url: string, init: RequestInit, call: unknown) => Promise<Response>;
}

export declare class Gate {
  decide(request: Request, ctx?: { waitUntil(p: Promise<unknown>): void }): Promise<Decision>;
  /** `origin` (`https://host`): where the request went, which DPoP proofs name. */
  check(method: string, pathAndQuery: string, headers: Iterable<[string, string]>, body?: string | Uint8Array, origin?: string): Promise<Decision>;
  tick(ctx?: { waitUntil(p: Promise<unknown>): void }): Promise<void>;
  stats(): Record<string, number>;
  static forwardable(request: Request, decision: Decision): Request;
  static denial(decision: Decision): Response;
}

export declare function createGate(policy: string | object, options: GateOptions): Promise<Gate>;

export declare function withGate<Env>(
  handler: (request: Request, env: Env, ctx: unknown, decision: Decision) => Response | Promise<Response>,
  configure: (env: Env) => { policy: string | object } & GateOptions,
): { fetch(request: Request, env: Env, ctx: unknown): Promise<Response> };
