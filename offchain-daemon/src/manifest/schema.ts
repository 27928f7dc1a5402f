import { z } from "zod";

/** Default size limit of a manifest block, in bytes; the daemon refuses larger ones with ManifestTooLarge. */
export const MANIFEST_MAX_BYTES = 64 * 1024;

/** Process APIs (spawn, execve) reject strings containing NUL; refusing them here names the field at fault. */
const noNul = (value: string) => !value.includes("\0");

/**
 * A DNS label (RFC 1123): the name may become a hostname, a directory name or
 * a Kubernetes object name, and all of those accept this set.
 */
const NameSchema = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/, "must be lowercase letters, digits and '-', not starting or ending with '-'");

const ResourcesSchema = z
  .object({
    vcpu: z.number().int().min(1).max(256),
    memoryMiB: z.number().int().min(16).max(1_048_576),
    diskGiB: z.number().int().min(1).max(65_536),
  })
  .strict();

/** Variables the provider's driver sets for every workload; a manifest may not override them. */
const RESERVED_ENV = /^(PORT|NOVACRON_.*)$/;

const EnvSchema = z
  .record(
    z
      .string()
      .regex(/^[A-Z_][A-Z0-9_]*$/, "environment variable names are uppercase letters, digits and '_', not starting with a digit")
      .refine((key) => !RESERVED_ENV.test(key), "PORT and NOVACRON_* are set by the provider"),
    z.string().max(4096).refine(noNul, "must not contain NUL characters"),
  )
  .refine((env) => Object.keys(env).length <= 64, "at most 64 environment variables");

/** Runs a program on the provider's host under its process driver's sandbox. */
const ProcessWorkloadSchema = z
  .object({
    type: z.literal("process"),
    /** Looked up on the provider's PATH: a bare name, so a manifest cannot pick an arbitrary file on the host. */
    command: z
      .string()
      .min(1)
      .max(64)
      .regex(/^[A-Za-z0-9_][A-Za-z0-9._+-]*$/, "must be a program name such as \"node\": no '/', no leading '.' or '-'"),
    args: z.array(z.string().max(4096).refine(noNul, "must not contain NUL characters")).max(64).default([]),
    env: EnvSchema.default({}),
  })
  .strict();

/** One option per driver kind; new kinds (e.g. "qemu") are added here as further options. */
const WorkloadSchema = z.discriminatedUnion("type", [ProcessWorkloadSchema]);

const PortSchema = z
  .object({
    name: z.string().min(1).max(15).regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/, "must be lowercase letters, digits and '-'"),
    protocol: z.literal("tcp"),
  })
  .strict();

export const ManifestSchema = z
  .object({
    version: z.literal(1),
    name: NameSchema,
    resources: ResourcesSchema,
    workload: WorkloadSchema,
    ports: z
      .array(PortSchema)
      .max(16)
      .default([])
      .refine((ports) => new Set(ports.map((port) => port.name)).size === ports.length, "port names must be unique"),
  })
  .strict();

/** A validated manifest, with defaults applied (`args`, `env`, `ports`). */
export type Manifest = z.infer<typeof ManifestSchema>;
export type ProcessWorkload = z.infer<typeof ProcessWorkloadSchema>;
