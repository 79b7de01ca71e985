/**
 * The hand-written types against the gateway's OpenAPI document, at the type level:
 * `src/openapi.d.ts` is generated from the live `/openapi.json` (openapi-typescript) and
 * `tsc -p tsconfig.openapi.json` fails on any line below that stops holding.
 *
 * Operations are found by path and method (what the client calls), never by schema
 * name, and a path parameter matches whatever it is named (`{job_id}`, `{id}`), so
 * renaming a component or a parameter changes nothing. For each answer the client reads:
 * - the documented shape must be readable as the client's type (`Fits`), which also
 *   catches a required field the document makes optional or nullable;
 * - every field the client declares must be documented (`Declared`);
 * - a missing 200, or one typed `any`/`unknown`/`never`, fails instead of passing.
 */
import type { paths } from "../src/openapi.js";
import type { Deployment, DriveUploaded, ErrorBody, JobEvent, JobList, JobOut } from "../src/types.js";

type Assert<T extends true> = T;
type IsAny<T> = 0 extends 1 & T ? true : false;
type IsNever<T> = [T] extends [never] ? true : false;
type IsUnknown<T> = unknown extends T ? (IsAny<T> extends true ? false : true) : false;
/** A definite type: not any, unknown or never (an operation the document lost). */
type Definite<T> = IsAny<T> extends true ? false : IsNever<T> extends true ? false : IsUnknown<T> extends true ? false : true;

type Fits<Documented, Client> = Definite<Documented> extends true ? ([Documented] extends [Client] ? true : false) : false;
type Declared<Client, Documented> = Definite<Documented> extends true
  ? [Exclude<keyof Client, keyof Documented>] extends [never]
    ? true
    : false
  : false;
type Holds<Documented, Client> = Fits<Documented, Client> extends true ? Declared<Client, Documented> : false;
type HasKeys<T, K extends PropertyKey> = Definite<T> extends true ? ([K] extends [keyof T] ? true : false) : false;

/** The document's path matching `P`, where `{}` stands for a parameter of any name. */
type Path<P extends string> = P extends `${infer Head}{}${infer Tail}` ? `${Head}{${string}}${Path<Tail>}` : P;
type At<P extends string> = Extract<keyof paths, Path<P>>;
type Op<P extends keyof paths, M extends PropertyKey> = M extends keyof paths[P] ? paths[P][M] : never;
type Responses<O> = O extends { responses: infer R } ? R : never;
type Json<R> = R extends { content: { "application/json": infer B } } ? B : never;
type Ok<P extends keyof paths, M extends PropertyKey> = Json<
  Responses<Op<P, M>> extends { 200: infer R } ? R : never
>;
type ErrorOf<P extends keyof paths, M extends PropertyKey, S extends number> = Json<
  Responses<Op<P, M>> extends { [K in S]: infer R } ? R : never
>;
type Body<P extends keyof paths, M extends PropertyKey, C extends string> =
  Op<P, M> extends { requestBody?: { content: { [K in C]: infer B } } } ? B : never;
type Params<P extends keyof paths, M extends PropertyKey, W extends "query" | "header"> =
  Op<P, M> extends { parameters: { [K in W]?: infer Q } } ? NonNullable<Q> : never;
type Headers200<P extends keyof paths, M extends PropertyKey> =
  Responses<Op<P, M>> extends { 200: { headers: infer H } } ? H : never;
type Item<A> = A extends readonly (infer I)[] ? I : never;

// -- jobs (J1, J2, J4, J5, J6, J10, Z6) ------------------------------------------------------
export type Checks = [
  Assert<Holds<Ok<At<"/v1/jobs">, "post">, JobOut>>,
  Assert<Holds<Ok<At<"/v1/jobs/{}">, "get">, JobOut>>,
  Assert<Holds<Ok<At<"/v1/jobs/{}/cancel">, "post">, JobOut>>,
  Assert<Holds<Ok<At<"/v1/jobs">, "get">, JobList>>,
  Assert<Holds<Item<Ok<At<"/v1/jobs">, "get">["jobs"]>, JobOut>>,
  Assert<Holds<Item<Ok<At<"/v1/jobs/{}/events">, "get">["events"]>, JobEvent>>,
  Assert<HasKeys<Body<At<"/v1/jobs">, "post", "application/json">, "skill" | "inputs" | "max_cost_micros">>,
  Assert<HasKeys<Params<At<"/v1/jobs">, "post", "query">, "wait" | "timeout" | "stream">>,
  Assert<HasKeys<Params<At<"/v1/jobs">, "post", "header">, "Idempotency-Key">>,
  Assert<HasKeys<Headers200<At<"/v1/jobs">, "post">, "Puras-Job-Id">>,
  Assert<HasKeys<Params<At<"/v1/jobs">, "get", "query">, "status" | "limit" | "cursor">>,
  Assert<HasKeys<Params<At<"/v1/jobs/{}/stream">, "get", "header">, "Last-Event-ID">>,
  // -- errors: every refusal the client maps to PurasError has the documented body ----------
  Assert<Fits<ErrorOf<At<"/v1/jobs">, "post", 404>, ErrorBody>>,
  Assert<Fits<ErrorOf<At<"/v1/jobs">, "post", 422>, ErrorBody>>,
  Assert<Fits<ErrorOf<At<"/v1/jobs/{}/cancel">, "post", 409>, ErrorBody>>,
  // -- deployments (P1, P3, Z7) -----------------------------------------------------------------
  Assert<Holds<Item<Ok<At<"/v1/deployments">, "get">["deployments"]>, Deployment>>,
  Assert<Holds<Ok<At<"/v1/deployments/{}/activate">, "post">, Deployment>>,
  // -- drive (D2) -------------------------------------------------------------------------------
  Assert<Holds<Ok<At<"/v1/drive/upload">, "post">, DriveUploaded>>,
  Assert<HasKeys<Body<At<"/v1/drive/upload">, "post", "multipart/form-data">, "file" | "path">>,
];
