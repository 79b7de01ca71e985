// The one place pages get their rendering primitives from: Preact with htm's tagged
// templates (no JSX, so no build step). Preact escapes every interpolated value, so a
// job result holding "<script>" renders as text; never use dangerouslySetInnerHTML.
import { h, render, Fragment, createContext } from "../vendor/preact.mjs";
import htm from "../vendor/htm.mjs";

export { h, render, Fragment, createContext };
export {
  useState,
  useEffect,
  useMemo,
  useCallback,
  useRef,
  useContext,
  useReducer,
  useId,
} from "../vendor/hooks.mjs";

export const html = htm.bind(h);
