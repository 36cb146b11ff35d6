// Public entry of the mirrorfarm package for Pulumi programs.
export {};
