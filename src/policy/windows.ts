import type { Day, Schedule, Window } from "./types.js";

/** Pure calendar arithmetic in IANA time zones (DST included), with formatters cached per zone. */

const formatters = new Map<string, Intl.DateTimeFormat>();
const DAYS: Day[] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const WEEKDAY_INDEX: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
      weekday: "short",
    });
    formatters.set(timeZone, f);
  }
  return f;
}

export function isValidTimeZone(timeZone: string): boolean {
  try {
    formatter(timeZone);
    return true;
  } catch {
    return false;
  }
}

export interface LocalTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  weekday: number;
}

/** formatToParts costs microseconds; one call per zone per second serves every rule of a request. */
const lastLocal = new Map<string, { second: number; value: LocalTime }>();
const dayWindows = new Map<string, { startMs: number; endMs: number }>();

export function localTime(ms: number, timeZone: string): LocalTime {
  const second = Math.floor(ms / 1000);
  const cached = lastLocal.get(timeZone);
  if (cached !== undefined && cached.second === second) return cached.value;
  const value = computeLocalTime(ms, timeZone);
  if (lastLocal.size > 1000) lastLocal.clear();
  lastLocal.set(timeZone, { second, value });
  return value;
}

function computeLocalTime(ms: number, timeZone: string): LocalTime {
  const parts: Record<string, string> = {};
  for (const p of formatter(timeZone).formatToParts(ms)) parts[p.type] = p.value;
  return {
    year: Number(parts.year),
    month: Number(parts.month),
    day: Number(parts.day),
    hour: Number(parts.hour),
    minute: Number(parts.minute),
    second: Number(parts.second),
    weekday: WEEKDAY_INDEX[parts.weekday!]!,
  };
}

/** The instant at which the zone's wall clock reads the given local date and time. */
function instantOf(year: number, month: number, day: number, hour: number, minute: number, timeZone: string): number {
  const wall = Date.UTC(year, month - 1, day, hour, minute);
  const offsetAt = (ms: number) => {
    const l = computeLocalTime(ms, timeZone);
    return Date.UTC(l.year, l.month - 1, l.day, l.hour, l.minute, l.second) - Math.floor(ms / 1000) * 1000;
  };
  const guess = wall - offsetAt(wall);
  return wall - offsetAt(guess);
}

/** The calendar window (minute, hour or local day) holding `ms`: its start and end. */
export function calendarWindow(ms: number, per: Window, timeZone = "UTC"): { startMs: number; endMs: number } {
  if (per === "minute") {
    const startMs = ms - (ms % 60_000);
    return { startMs, endMs: startMs + 60_000 };
  }
  const l = localTime(ms, timeZone);
  if (per === "hour") {
    const startMs = ms - ((l.minute * 60 + l.second) * 1000 + (ms % 1000));
    return { startMs, endMs: startMs + 3_600_000 };
  }
  const key = `${timeZone}|${l.year}-${l.month}-${l.day}`;
  const known = dayWindows.get(key);
  if (known !== undefined) return known;
  const startMs = instantOf(l.year, l.month, l.day, 0, 0, timeZone);
  const next = new Date(Date.UTC(l.year, l.month - 1, l.day + 1));
  const endMs = instantOf(next.getUTCFullYear(), next.getUTCMonth() + 1, next.getUTCDate(), 0, 0, timeZone);
  if (dayWindows.size > 10_000) dayWindows.clear();
  dayWindows.set(key, { startMs, endMs });
  return { startMs, endMs };
}

export function parseHours(hours: string): { start: number; end: number } | undefined {
  const m = /^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$/.exec(hours);
  if (!m) return undefined;
  const start = Number(m[1]) * 60 + Number(m[2]);
  const end = Number(m[3]) * 60 + Number(m[4]);
  if (end > 24 * 60 || start === end) return undefined;
  return { start, end };
}

/** Whether `ms` falls inside the schedule. A window past midnight belongs to the day it opened. */
export function inSchedule(ms: number, schedule: Schedule): boolean {
  const l = localTime(ms, schedule.timeZone ?? "UTC");
  const minute = l.hour * 60 + l.minute;
  const days = schedule.days;
  const dayAllowed = (weekday: number) => days === undefined || days.includes(DAYS[(weekday + 7) % 7]!);
  if (schedule.hours === undefined) return dayAllowed(l.weekday);
  const { start, end } = parseHours(schedule.hours)!;
  if (start < end) return dayAllowed(l.weekday) && minute >= start && minute < end;
  // Wraps past midnight: the early-morning part belongs to the previous day's window.
  if (minute >= start) return dayAllowed(l.weekday);
  return minute < end && dayAllowed(l.weekday - 1);
}

export function describeSchedule(s: Schedule): string {
  const days = s.days === undefined ? "every day" : s.days.join(",");
  return `${days}${s.hours === undefined ? "" : ` ${s.hours}`} (${s.timeZone ?? "UTC"})`;
}
