// Placeholder until this command lands; replaced by its implementation.
export const command = {
  summary: "not available yet",
  run: async (_argv: string[]): Promise<number> => {
    console.error("mirrorfarm: this command is not available yet in this build.");
    return 2;
  },
};
