// A `node --import` preload for clients that take only a URL (the conformance suite): every
// HTTP request the process makes — `fetch` and undici's own `request` alike, through undici's
// global dispatcher — carries Airlock's bearer token (AIRLOCK_TEST_BEARER) unless it names one.
import { Agent, setGlobalDispatcher } from "undici";

const token = process.env.AIRLOCK_TEST_BEARER;
if (!token) throw new Error("bearer.mjs: AIRLOCK_TEST_BEARER is not set");
const bearer = `Bearer ${token}`;
const isAuthorization = (name) => String(name).toLowerCase() === "authorization";

/// The request's headers (an object, a flat [name, value, …] list or [name, value] pairs), with
/// the bearer token added when they carry no Authorization of their own.
function withBearer(headers) {
  if (headers == null) return { authorization: bearer };
  if (Array.isArray(headers) && headers.every(Array.isArray)) {
    return headers.some(([name]) => isAuthorization(name)) ? headers : [...headers, ["authorization", bearer]];
  }
  if (Array.isArray(headers)) {
    return headers.some((h, i) => i % 2 === 0 && isAuthorization(h)) ? headers : [...headers, "authorization", bearer];
  }
  return Object.keys(headers).some(isAuthorization) ? headers : { ...headers, authorization: bearer };
}

setGlobalDispatcher(
  new Agent().compose((dispatch) => (options, handler) => dispatch({ ...options, headers: withBearer(options.headers) }, handler)),
);
