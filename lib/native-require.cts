// CommonJS `require`, for loading `.node` files from both the ESM and the CommonJS builds.
export const nativeRequire: NodeJS.Require = require;
